"""The AWS side of the launcher: the only package that imports aioboto3 and botocore.

``provider.AWSCloudProvider`` implements ``launcher.provider.CloudProvider`` on top of the
catalogue (instance types, offerings, prices), the warm launch templates and CreateFleet.
"""

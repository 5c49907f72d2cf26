"""Interruption handling: EC2's notices, read from SQS, move pods off a node before it goes.

``messages`` (pure) parses the EventBridge events AWS puts on the queue; ``decisions`` (pure)
says what each asks (replace by a deadline, report, ignore) and sizes the replacements;
``instances`` indexes NodeClaims by instance id; ``controller`` (I/O, leader only) long-polls
the queue through ``launcher.aws.queue`` and hands each node to the disruption controller with
its deadline. See docs/interruption.md.
"""

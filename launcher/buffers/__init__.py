"""CapacityBuffers (``autoscaling.x-k8s.io/v1beta1``): spare capacity kept ready as virtual pods.

``decisions`` (pure) turns each buffer and its pod template into virtual pod demands and the
buffer's status; ``controller`` (I/O, leader only) watches the buffers, reads their PodTemplates
and workloads, feeds the chunks into the demand book as one more source, and writes status.
"""

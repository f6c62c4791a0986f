"""What enters or leaves a session.

Checkpoint files, downloads, the PyTorch script, ONNX, links, and serve.
"""

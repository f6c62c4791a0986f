"""What leaves or enters a session: checkpoint files, downloads, the PyTorch script, ONNX, links, serve."""

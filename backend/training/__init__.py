"""Training deep STF models, their ONNX export and the training report."""

"""Deep spatio-temporal fusion networks, their registry and shipped ONNX model cards.

Pure torch/onnx code: never imports qgis. The networks arrive with the training stage.
"""

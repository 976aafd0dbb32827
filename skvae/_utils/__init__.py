"""What PCA and the neural estimators both use, one module per concern:
``devices`` (which torch device), ``seeds`` (random_state to generators),
``arrays`` (numpy and tensors), ``denormals`` (the CPU's denormal flag) and
``validation`` (parameters and values)."""

"""cond-lsgan: least-squares GANs conditioned on class labels, for thousands of classes."""

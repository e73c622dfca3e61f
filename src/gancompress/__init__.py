"""gancompress: make conditional GAN generators ten to thirty times cheaper to run, and prove it."""

__version__ = "0.1.0"

"""Measurements: MACs/params (profile), and the quality metrics (FID/KID per extractor, PSNR/SSIM/L1,
content accuracy, mIoU).

Heavy pieces are imported from their modules (``gancompress.metrics.evaluate``, ``.vgg``, ...) so
that ``import gancompress.metrics.profile`` stays cheap.
"""

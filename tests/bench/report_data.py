"""A hand-built results.json object for the report tests: no training, no timing.

Four methods beside the teacher, each with an int8 row, the fp32 and int8 rows of a model sharing
their MACs (so their points and labels crowd together), one model failing its quality gate, one that
produced nothing, a metric equal for every model, and the per-inference floor.
"""

import copy

EXTRACTOR = {
    "extractor": "domain/fonts",
    "comparable_with_published_fid": False,
    "num_real": 96,
    "num_fake": 96,
}
FONTS_ARCH = "16_16_32_16_32_32_16_16"


def _latency(name, ms):
    return [{"name": name, "runtime": rt, "median_ms": v, "error": None} for rt, v in ms.items()]


def _row(name, method, macs, ms, psnr, fid, precision="fp32", gate=None, arch=FONTS_ARCH):
    row = {
        "name": name,
        "method": method,
        "family": "resnet",
        "arch": arch,
        "path": f"runs/{name}",
        "macs_paper": macs,
        "macs_true": macs * 1.02,
        "params": macs / 60,
        "size_bytes": int(macs / 40),
        "precision": precision,
        "latency_ms": ms,
        "latency": _latency(name, ms),
        "quality": {
            "psnr": psnr,
            "ssim": 0.5 + psnr / 100,
            "l1": 0.3 - psnr / 100,
            "fid_domain": fid,
            "kid_domain": fid / 1000,
            "content_accuracy_domain": 1.0,  # equal for every model: its plot carries no information
        },
        "evaluation": {"num_images": 96, "skipped": {}, "extractors": {"domain": dict(EXTRACTOR)}},
        "quality_gate": gate or {"passed": True, "reasons": [], "scores": {}, "source": "benchmark"},
    }
    return row


FAILED_GATE = {
    "passed": False,
    "reasons": ["constant output (pixel standard deviation 0.0003 < 0.01)"],
    "scores": {"psnr_vs_teacher": 9.1, "psnr_copy_vs_teacher": 14.2},
    "source": "runs/gan-slimming/summary.json",
}


def synthetic_results():
    """A fresh results object (callers may change it)."""
    teacher_macs = 1.43e9
    rows = [
        _row("teacher", "teacher", teacher_macs, {"ort-fp32": 41.0, "openvino-fp32": 30.5}, 17.52, 56.8),
        _row("teacher int8", "int8-ptq", teacher_macs, {"ort-int8": 22.0}, 17.31, 60.2, "int8"),
        _row(
            "fast-gan-compression",
            "fast-gan-compression",
            1.18e8,
            {"ort-fp32": 6.0, "openvino-fp32": 3.63},
            17.32,
            74.8,
            arch="4_8_8_4_8_8_4_8",
        ),
        _row(
            "fast-gan-compression int8",
            "fast-gan-compression + int8-ptq",
            1.18e8,
            {"ort-int8": 4.1},
            17.2,
            77.0,
            "int8",
            arch="4_8_8_4_8_8_4_8",
        ),
        _row(
            "gan-compression",
            "gan-compression",
            1.05e8,
            {"ort-fp32": 5.6, "openvino-fp32": 3.4},
            17.15,
            102.7,
            arch="4_4_8_4_8_8_4_8",
        ),
        _row(
            "gan-compression int8",
            "gan-compression + int8-ptq",
            1.05e8,
            {"ort-int8": 3.9},
            17.0,
            104.1,
            "int8",
            arch="4_4_8_4_8_8_4_8",
        ),
        _row(
            "gan-slimming",
            "gan-slimming",
            2.1e8,
            {"ort-fp32": 9.0, "openvino-fp32": 6.1},
            14.14,
            394.7,
            gate=FAILED_GATE,
            arch="8_8_8_8_8_8_8_4",
        ),
        _row(
            "gan-slimming int8",
            "gan-slimming + int8-ptq",
            2.1e8,
            {"ort-int8": 6.0},
            14.0,
            400.0,
            "int8",
            gate={"passed": False, "reasons": ["its fp32 model gan-slimming failed"]},
            arch="8_8_8_8_8_8_8_4",
        ),
    ]
    return copy.deepcopy(
        {
            "version": 1,
            "environment": {"cpu": "Test CPU", "threads": 2, "torch": "2.13.0", "onnxruntime": "1.32.0"},
            "environment_line": "device cpu (Test CPU), 2 threads, torch 2.13.0, onnxruntime 1.32.0",
            "data": {"root": "datasets/fonts", "kind": "paired", "image_size": 64, "latency_size": 256},
            "options": {"repeats": 20, "warmup": 3},
            "rows": rows,
            "floor": {
                "what": "the resnet family at width 1 in every layer (same depth and operators, random weights)",
                "arch": "1_1_1_1_1_1_1_1",
                "macs_paper": 2.9e6,
                "macs_true": 3.0e6,
                "params": 2000,
                "latency_ms": {"ort-fp32": 1.2, "openvino-fp32": 0.61},
                "latency": [],
            },
            "failed_models": {"coronet": "ConfigError: budget too small for this teacher"},
            "notes": ["coronet: failed — ConfigError: budget too small for this teacher"],
        }
    )

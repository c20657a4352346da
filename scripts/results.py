#!/usr/bin/env python3
"""Writes docs/results.md and docs/results-NAME.png from the shipped models, measured by
`spikeserve evaluate` on each data set's validation split (the seeded 10% split every command uses).

Usage: results.py SPIKESERVE_BIN NAME=MODEL_ROOT:DATA_DIR:CONVERTED_VERSION:HYBRID_VERSION[:LIMIT[:CLIP_VERSION]] [...]
  LIMIT: evaluate the SNNs on a seeded subset of that many validation images (the ANN always on all;
  empty for all). CLIP_VERSION: a version converted from QCFS clips, the hybrid's starting point.
"""
import json
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CONVERTED_T = [8, 16, 32, 64, 128, 256]
HYBRID_T = [2, 4, 8, 16, 32]
ADAPTIVE_T = [16, 32]
PAPER = (
    "Rathi et al. (ICLR 2020) report, on CIFAR-10, a hybrid VGG16 at 91.13% with T = 100 and a "
    "hybrid ResNet-20 at 92.22% with T = 250. Their networks are far larger than ours (VGG16: 13 "
    "convolutions of up to 512 channels; the reference implementation's ResNet-20: 64 to 512 "
    "channels) and were trained on GPUs; ours are sized for two CPU cores, with fewer epochs. "
    "The clip-floor-shift activation our CIFAR-10 ANN uses comes from Bu et al. (ICLR 2022, QCFS), "
    "whose code's README reports a CIFAR-10 VGG-16 (trained 300 epochs with L = 4) converted to "
    "94.01% at T = 4 and 95.01% at T = 8 without spike-based fine-tuning."
)


def evaluate(binary, model, data, *args):
    out = subprocess.run(
        [binary, "evaluate", model, "--data", data, "--split", "validation", "--json", *args],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def pct(x):
    return "—" if x is None else f"{100 * x:.2f}%"


def measure(binary, name, root, data, converted, hybrid, limit=None, clip=None):
    conv_dir, hyb_dir = f"{root}/{converted}", f"{root}/{hybrid}"
    print(f"{name}: ANN", file=sys.stderr)
    ann = evaluate(binary, conv_dir, data, "--ann")
    subset = ["--limit", str(limit)] if limit else []
    rows = {"converted": {}, "clip": {}, "hybrid": {}, "adaptive": {}}
    for t in CONVERTED_T:
        print(f"{name}: converted T={t}", file=sys.stderr)
        rows["converted"][t] = evaluate(binary, conv_dir, data, "--timesteps", str(t), *subset)
    for t in HYBRID_T if clip else []:
        print(f"{name}: converted from clips T={t}", file=sys.stderr)
        rows["clip"][t] = evaluate(binary, f"{root}/{clip}", data, "--timesteps", str(t), *subset)
    for t in HYBRID_T:
        print(f"{name}: hybrid T={t}", file=sys.stderr)
        rows["hybrid"][t] = evaluate(binary, hyb_dir, data, "--timesteps", str(t), *subset)
    hybrid_model = json.load(open(f"{hyb_dir}/model.json"))
    if (hybrid_model.get("snn") or {}).get("exit_policy"):
        for t in ADAPTIVE_T:
            print(f"{name}: adaptive T={t}", file=sys.stderr)
            rows["adaptive"][t] = evaluate(binary, hyb_dir, data, "--timesteps", str(t), "--adaptive", *subset)
    return ann, rows, hybrid_model


def section(name, root, converted, hybrid, ann, rows, hybrid_model, figure, limit=None, clip=None):
    notes = hybrid_model.get("provenance", {}).get("notes", {})
    epochs = notes.get("finetune_epochs", "?")
    seconds = notes.get("finetune_seconds")
    wall = f"{int(seconds) / 60:.0f} min" if seconds else "not recorded"
    lines = [f"## {name}", ""]
    start = (f"version {clip}, the SNN converted from the ANN's QCFS clips (Bu et al. 2022)" if clip
             else "a conversion of the same ANN")
    lines.append(
        f"`{root}`: version {converted} is the SNN converted by the paper's threshold balancing, "
        f"version {hybrid} the hybrid ({epochs} epochs of spike-based fine-tuning from {start}; "
        f"wall time {wall}). "
        f"Validation split: {ann['images']} images"
        + (f" (the SNN rows: a seeded subset of {limit}, as simulating T = 256 on all of them takes long)." if limit else "."))
    lines.append("")
    lines.append(f"ANN: **{pct(ann['accuracy'])}** ({ann['macs_per_image']:,} multiply-accumulates per image).")
    lines.append("")
    lines.append("| SNN | " + " | ".join(f"T = {t}" for t in CONVERTED_T) + " |")
    lines.append("| --- |" + " --- |" * len(CONVERTED_T))
    lines.append("| converted (threshold balancing) | " + " | ".join(pct(rows["converted"][t]["accuracy"]) for t in CONVERTED_T) + " |")
    lines.append("")
    lines.append("| SNN | " + " | ".join(f"T = {t}" for t in HYBRID_T) + " |")
    lines.append("| --- |" + " --- |" * len(HYBRID_T))
    if rows["clip"]:
        lines.append("| converted from clips (no fine-tuning) | " + " | ".join(pct(rows["clip"][t]["accuracy"]) for t in HYBRID_T) + " |")
    lines.append("| hybrid (conversion + STDB) | " + " | ".join(pct(rows["hybrid"][t]["accuracy"]) for t in HYBRID_T) + " |")
    lines.append("")
    if rows["adaptive"]:
        lines.append("Adaptive time steps (the hybrid's calibrated exit policy):")
        lines.append("")
        lines.append("| budget | accuracy | mean steps | fixed budget |")
        lines.append("| --- | --- | --- | --- |")
        for t, r in rows["adaptive"].items():
            lines.append(f"| {t} | {pct(r['accuracy'])} | {r['mean_timesteps_used']:.2f} | {pct(rows['hybrid'][t]['accuracy'])} |")
        lines.append("")
    lines.append("Cost per image (the energy argument: an SNN adds a weight per input event, a *synaptic "
                 "operation*, where the ANN multiplies and adds every weight):")
    lines.append("")
    lines.append("| model | T | spike rate per spiking layer (spikes per neuron per step) | synaptic operations | vs ANN multiply-accumulates |")
    lines.append("| --- | --- | --- | --- | --- |")
    macs = ann["macs_per_image"]
    for label, key, t in [("hybrid", "hybrid", 4), ("hybrid", "hybrid", 8), ("converted from clips", "clip", 8),
                          ("converted", "converted", 32)]:
        r = rows[key].get(t)
        if not r:
            continue
        rates = ", ".join(f"{x:.3f}" for x in r["spike_rate_per_layer"])
        ops = r["synaptic_ops_per_image"]
        lines.append(f"| {label} | {t} | {rates} | {ops:,.0f} | {ops / macs:.2f}× |")
    lines.append("")
    lines.append(f"![accuracy against time steps]({os.path.basename(figure)})")
    lines.append("")
    return "\n".join(lines)


def plot(name, ann, rows, path):
    plt.figure(figsize=(6, 3.6))
    plt.axhline(100 * ann["accuracy"], color="black", linestyle="--", label="ANN")
    plt.plot(CONVERTED_T, [100 * rows["converted"][t]["accuracy"] for t in CONVERTED_T], "o-", label="converted SNN")
    if rows["clip"]:
        plt.plot(HYBRID_T, [100 * rows["clip"][t]["accuracy"] for t in HYBRID_T], "^-", label="converted from clips")
    plt.plot(HYBRID_T, [100 * rows["hybrid"][t]["accuracy"] for t in HYBRID_T], "s-", label="hybrid SNN")
    plt.xscale("log", base=2)
    plt.xlabel("time steps T")
    plt.ylabel("validation accuracy (%)")
    low = min([100 * rows[k][t]["accuracy"] for k in ("converted", "clip", "hybrid") for t in rows[k]])
    plt.ylim(max(0, min(low, 100 * ann["accuracy"]) - 2), 100)
    plt.title(name)
    plt.legend(loc="lower right")
    plt.grid(alpha=0.3)
    plt.tight_layout()
    plt.savefig(path, dpi=110)
    plt.close()


def main():
    binary = sys.argv[1]
    parts = ["# Results", "",
             "Produced by `bash scripts/results.sh` from the shipped models; every figure is "
             "`spikeserve evaluate` on the model's validation split (never trained on). The held-out "
             "test sets are not in this repository.", ""]
    for spec in sys.argv[2:]:
        name, rest = spec.split("=", 1)
        root, data, converted, hybrid, *optional = rest.split(":")
        limit = int(optional[0]) if optional and optional[0] else None
        clip = optional[1] if len(optional) > 1 else None
        ann, rows, hybrid_model = measure(binary, name, root, data, converted, hybrid, limit, clip)
        figure = f"docs/results-{name}.png"
        plot(name, ann, rows, figure)
        parts.append(section(name, root, converted, hybrid, ann, rows, hybrid_model, figure, limit, clip))
    parts += ["## What the paper reports", "", PAPER, ""]
    with open("docs/results.md", "w") as f:
        f.write("\n".join(parts))
    print("wrote docs/results.md", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Merge the JSON result files of one benchmark run into one Markdown table.

Usage: bench/report.py RESULT.json [RESULT.json ...]

Each file is what a bench program wrote with --json (format: bench/README.md,
"Result files").  The table has one row per result: libuvm's median and
spread, the baseline's (raw launch, raw client, or none), their ratio, and
whether the result's target was met.  libvirt's results are paired with
libuvm's own start and forced stop from the same run, and reported as
libvirt/libuvm speed-ups.  A last section lists every target with "met",
"MISSED" or "not measured", so a missed target cannot hide in the table.
"""
import json
import sys

# libvirt result -> (libuvm result it is compared with, required speed-up)
LIBVIRT_PAIRS = {
    "libvirt_start": ("start_ready", 8.0),
    "libvirt_stop": ("stop_forced", 20.0),
}


def fmt(value):
    if value is None:
        return "–"
    if value >= 100:
        return "%.0f" % value
    if value >= 10:
        return "%.1f" % value
    return "%.2f" % value


def spread(side):
    if not side or side.get("p10") is None:
        return ""
    return "%s–%s" % (fmt(side["p10"]), fmt(side["p90"]))


def load(paths):
    results, environment = [], {}
    for path in paths:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            print("report.py: %s: %s" % (path, e), file=sys.stderr)
            continue
        environment.update(data.get("environment") or {})
        for r in data.get("results", []):
            r["program"] = data.get("program", path)
            results.append(r)
    return results, environment


def check_target(r):
    """(verdict, text) for a result with a target, else None."""
    target = r.get("target")
    if not target or r.get("skipped"):
        return None
    a, b = r.get("a") or {}, r.get("b") or {}
    if "max_ratio" in target:
        if not a.get("median") or not b.get("median"):
            return ("not measured", "ratio ≤ %.2f" % target["max_ratio"])
        ratio = a["median"] / b["median"]
        return ("met" if ratio <= target["max_ratio"] else "MISSED",
                "%s/%s = %.3f× (target ≤ %.2f×)" % (a["name"], b["name"], ratio, target["max_ratio"]))
    if "max_value" in target:
        if a.get("median") is None:
            return ("not measured", "≤ %s %s" % (target["max_value"], r.get("unit", "")))
        return ("met" if a["median"] <= target["max_value"] else "MISSED",
                "%s %s (target ≤ %s %s)" % (fmt(a["median"]), r.get("unit", ""),
                                              target["max_value"], r.get("unit", "")))
    return None


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    results, environment = load(argv[1:])
    by_id = {r["id"]: r for r in results}
    verdicts = []

    if environment:
        print("Environment: " + "; ".join("%s: %s" % kv for kv in sorted(environment.items())))
        print()
    print("| measurement | unit | libuvm median | libuvm p10–p90 | baseline | baseline median "
          "| baseline p10–p90 | libuvm/baseline | target |")
    print("|---|---|--:|--:|---|--:|--:|--:|---|")
    for r in results:
        if r["id"] in LIBVIRT_PAIRS:
            continue
        if r.get("skipped"):
            print("| %s | | skipped: %s | | | | | | |" % (r.get("label", r["id"]), r["skipped"]))
            continue
        a, b = r.get("a") or {}, r.get("b") or {}
        ratio = (a["median"] / b["median"]) if a.get("median") and b.get("median") else None
        verdict = check_target(r)
        if verdict:
            verdicts.append((r.get("label", r["id"]), verdict))
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r.get("label", r["id"]), r.get("unit", ""), fmt(a.get("median")), spread(a),
            b.get("name", "–"), fmt(b.get("median")), spread(b),
            ("%.3f×" % ratio) if ratio else "–", verdict[0] if verdict else ""))

    libvirt_rows = [r for r in results if r["id"] in LIBVIRT_PAIRS]
    if libvirt_rows:
        print()
        print("| libvirt comparison | libvirt median | libvirt p10–p90 | libuvm median "
              "| libvirt/libuvm | target | verdict |")
        print("|---|--:|--:|--:|--:|--:|---|")
        for r in libvirt_rows:
            ours_id, need = LIBVIRT_PAIRS[r["id"]]
            label = r.get("label", r["id"])
            if r.get("skipped"):
                print("| %s | skipped: %s | | | | ≥ %g× | not measured |" % (label, r["skipped"], need))
                verdicts.append((label, ("not measured", "libvirt: " + r["skipped"])))
                continue
            ours = (by_id.get(ours_id) or {}).get("a") or {}
            theirs = r.get("a") or {}
            speedup = theirs["median"] / ours["median"] if ours.get("median") and theirs.get("median") else None
            verdict = ("not measured" if speedup is None else "met" if speedup >= need else "MISSED")
            verdicts.append((label, (verdict, "libvirt/libuvm = %s (target ≥ %g×)"
                                     % ("%.1f×" % speedup if speedup else "–", need))))
            print("| %s | %s ms | %s | %s ms | %s | ≥ %g× | %s |" % (
                label, fmt(theirs.get("median")), spread(theirs), fmt(ours.get("median")),
                ("%.1f×" % speedup) if speedup else "–", need, verdict))

    # "Flat from 1 to 100 VMs": the median event latency at the largest N
    # within 1.5x of the one at N = 1.
    lat = sorted(((int(r["id"].rsplit("_", 1)[1]), r) for r in results
                  if r["id"].startswith("scale_event_latency_") and not r.get("skipped")
                  and (r.get("a") or {}).get("median")), key=lambda x: x[0])
    if len(lat) >= 2:
        (n0, r0), (n1, r1) = lat[0], lat[-1]
        growth = r1["a"]["median"] / r0["a"]["median"]
        verdicts.append(("per-VM event latency, %d → %d VMs" % (n0, n1),
                         ("met" if growth <= 1.5 else "MISSED",
                          "median %s → %s %s = %.2f× (flat: ≤ 1.5×)"
                          % (fmt(r0["a"]["median"]), fmt(r1["a"]["median"]), r1.get("unit", ""),
                             growth))))

    print()
    print("Targets:")
    for label, (verdict, text) in verdicts:
        print("- %s: %s — %s" % (label, verdict, text))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

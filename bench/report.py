"""The benchmark result as a Markdown table and a figure."""

from __future__ import annotations

from pathlib import Path

from dlnotes.runner.sphinxext import bench_rows


def wall_times(curves: dict) -> list[float]:
    """Return the wall time at each epoch's end: training (cumulative) plus every evaluation so far."""
    return [t + sum(curves["eval_seconds"][: i + 1]) for i, t in enumerate(curves["seconds"])]


def table(result: dict) -> str:
    """Return the result's tables in Markdown, under a line naming the machine."""
    lines = [f"{result['machine']}, torch {result['torch']}, {result['date']}"]
    for headers, rows in bench_rows(result):
        lines += ["", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Save throughput and test accuracy over wall time, lab loop against engine, per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result["tasks"].values())
    colors = {"lab": "tab:gray", "engine": "tab:blue", "engine-tuned": "tab:orange"}
    names = {"lab": "lab-report loop", "engine": "dlnotes engine",
             "engine-tuned": "engine, larger batch"}  # fmt: skip
    with plt.rc_context({"font.size": 9}):
        rows = -(-len(tasks) // 2)
        mosaic = [["speed", "speed"]] + [[f"t{2 * r}", f"t{2 * r + 1}"] for r in range(rows)]
        fig, axd = plt.subplot_mosaic(mosaic, figsize=(8, 2.6 + 2.6 * rows), layout="constrained",
                                      empty_sentinel=f"t{len(tasks)}" if len(tasks) % 2 else None)  # fmt: skip
        ax, labelled = axd["speed"], set()
        for i, entry in enumerate(tasks):
            for j, (loop, run) in enumerate(entry["runs"].items()):
                ax.barh(i + 0.27 * j - 0.27, run["samples_per_second"], height=0.27,
                        color=colors[loop], label=None if loop in labelled else names[loop])  # fmt: skip
                labelled.add(loop)
        ax.set_yticks(range(len(tasks)), [e["task"]["name"] for e in tasks])
        ax.set_xscale("log")
        ax.set_xlabel("training samples / s (log)")
        ax.invert_yaxis()
        ax.legend(loc="lower right", fontsize=7)
        for i, entry in enumerate(tasks):
            ax = axd[f"t{i}"]
            for loop, run in entry["runs"].items():
                ax.plot(
                    wall_times(run), run["test_acc"], "o-", color=colors[loop], label=names[loop]
                )
            ax.set_title(entry["task"]["name"])
            ax.set_xlabel("wall time (s)")
            ax.set_ylabel("test accuracy")
        fig.savefig(path, dpi=130)
        plt.close(fig)

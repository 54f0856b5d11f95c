"""The table of a run of several jobs (``nsm train``, ``nsm validate``, ``nsm cloud ...``), one row each."""

from __future__ import annotations


def format_summary(summary: dict) -> str:
    """The table a researcher reads first: accuracy per class, collapse, reconstruction, a KG run's
    sampled-protocol MRR and Hits@10, time; then warnings for class collapse and for a GPU left
    waiting for data."""
    width = max([10, *(len(name) + 2 for name in summary)])  # sweep points have longer names than domains
    header = f"{'job':<{width}}{'status':<9}{'acc':>7}{'acc c0':>8}{'acc c1':>8}" \
             f"{'collapse':>10}{'recon L1':>10}{'recon L2':>10}{'MRR':>7}{'H@10':>7}{'time s':>9}"
    rows = [header, "-" * len(header)]
    for name, result in summary.items():
        if result.get("status") != "success":
            rows.append(f"{name:<{width}}{'FAILED':<9}  {result.get('error', '')}")
            finished = result.get("finished_run")
            if finished and finished.get("status") == "success":
                accuracy = finished.get("test_metrics", {}).get("accuracy")
                rows.append(f"{'':<{width}}{'':<9}  (results.json keeps the finished run of {finished.get('started_at')}"
                            + (f", test acc {accuracy:.1%})" if accuracy is not None else ")"))
            continue
        m = result["test_metrics"]

        def pct(key):
            return f"{m[key]:.1%}" if key in m else "-"

        def num(key, metrics=m):
            return f"{metrics[key]:.3f}" if key in metrics else "-"

        ranking = m.get("link_prediction") or {}
        rows.append(f"{name:<{width}}{'ok':<9}{pct('accuracy'):>7}{pct('accuracy_class_0'):>8}"
                    f"{pct('accuracy_class_1'):>8}{('YES' if m.get('collapsed') else 'no'):>10}"
                    f"{num('recon_error_l1'):>10}{num('recon_error_l2'):>10}{num('mrr', ranking):>7}"
                    f"{num('hits@10', ranking):>7}{result.get('training_time_s', 0):>9.1f}")
    succeeded = {name: result for name, result in summary.items() if result.get("status") == "success"}
    collapsed = [name for name, result in succeeded.items() if result["test_metrics"].get("collapsed")]
    if collapsed:
        rows.append(f"WARNING: class collapse in {', '.join(collapsed)}: the model predicts (almost) one class")
    for name, result in succeeded.items():
        if (result.get("gpu") or {}).get("warning"):
            rows.append(f"WARNING: {name}: {result['gpu']['warning']}")
    return "\n".join(rows)

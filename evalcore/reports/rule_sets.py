"""A cell's headline under each answer rule set, and the answers the sets read apart.

The same stored answers score differently under VLMEvalKit's, lmms-eval's and our reading
(`evalcore.scoring.rule_sets`); a number is comparable to a peer's only under the peer's
rule. Each set's reading alone, without a judge (VLMEvalKit's `exact_matching`): the
`evalcore` headline equals the cell's accuracy unless a judge read answers the rule could
not. Re-reading needs only the answers: no model is called, no key changes."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from evalcore.benchmarks import Benchmark
from evalcore.scoring import RuleSet, ScoredSample, has_letter_rule, read_letter


def rule_set_table(
    benchmark: Benchmark, trials: Mapping[int, Sequence[ScoredSample]]
) -> dict | None:
    """`headlines` (rule set -> mean accuracy over trials, failures wrong), `disagreements`
    (answers whose letters differ between the sets) and `disagreeing` (each such answer:
    trial, sample id, answer text, letter per set, the reference); None for a benchmark
    without a letter rule (a judged one)."""
    if benchmark.judged or not has_letter_rule(benchmark.name):
        return None
    accuracies: dict[str, list[float]] = {rs.value: [] for rs in RuleSet}
    disagreeing = []
    for trial, scored in trials.items():
        hits = dict.fromkeys(accuracies, 0)
        for row in scored:
            if row.status != "ok":
                continue
            text = row.record.prediction or ""
            letters = {
                rs.value: read_letter(
                    benchmark.name, rs, text, row.sample.options, row.sample.answer
                )
                for rs in RuleSet
            }
            for name, letter in letters.items():
                hits[name] += benchmark.is_correct(row.sample, letter)
            if len(set(letters.values())) > 1:
                disagreeing.append(
                    {
                        "trial": trial,
                        "sample_id": row.sample.sample_id,
                        "answer": text,
                        "letters": letters,
                        "reference": row.sample.answer,
                    }
                )
        for name, n in hits.items():
            accuracies[name].append(n / len(scored) if scored else 0.0)
    return {
        "default": benchmark.rule_set,
        "headlines": {name: statistics.fmean(a) for name, a in accuracies.items()},
        "disagreements": len(disagreeing),
        "disagreeing": disagreeing,
    }


def rules_differ(headlines: dict[str, float], low: float | None, high: float | None) -> bool:
    """Whether the rule sets' headlines are further apart than the cell's interval is
    wide on either side (the `±` the leaderboard shows): the rule, not the model, could
    then decide a ranking."""
    if not headlines or low is None or high is None:
        return False
    return max(headlines.values()) - min(headlines.values()) > (high - low) / 2


def rule_set_rows(table: dict) -> list[dict]:
    """Sheet `rule sets`: one row per disagreeing answer, a column per set's letter."""
    return [
        {
            "trial": d["trial"],
            "sample_id": d["sample_id"],
            "answer": d["answer"],
            **{f"letter ({name})": letter for name, letter in d["letters"].items()},
            "reference": d["reference"],
        }
        for d in table["disagreeing"]
    ]


def rules_markdown(report: dict) -> str:
    """`evalcore explain --rules`: the cell's headline per rule set and every answer the
    sets read apart."""
    cell = f"{report.get('model')} x {report.get('dataset')}"
    table = report.get("rule_sets")
    if not table:
        return f"# {cell}\n\nNo answer rule sets: this benchmark reads no option letters.\n"
    # in `RuleSet` order (the JSON's keys are sorted)
    names = [rs.value for rs in RuleSet if rs.value in table["headlines"]]
    lines = [f"# {cell}: answer rule sets", "", "| rule set | accuracy |", "|---|---|"]
    lines += [
        f"| {n}{' (default)' if n == table.get('default') else ''} | {table['headlines'][n]:.3f} |"
        for n in names
    ]
    lines += ["", f"{table['disagreements']} answers read differently.", ""]
    if table["disagreeing"]:
        head = ["trial", "sample", "answer", *names, "reference"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for d in table["disagreeing"]:
            said = d["answer"].replace("|", "\\|").replace("\n", " ")
            letters = [d["letters"].get(n) or "-" for n in names]
            row = [str(d["trial"]), str(d["sample_id"]), said, *letters, str(d["reference"])]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"

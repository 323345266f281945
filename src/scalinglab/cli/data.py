"""``scalinglab data list|show NAME|export NAME --out F``: the published datasets bundled with scalinglab."""

from __future__ import annotations

from pathlib import Path

import click

from .. import datasets
from . import main
from .output import emit_json, print_rows
from .paths import check_out_file, table_suffix, write_error, write_table

_FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


@main.group("data")
def data() -> None:
    """The published datasets bundled with scalinglab (with their licences and cards)."""


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_cmd(as_json: bool) -> None:
    """Every bundled table: NAME:TABLE, rows, licence and what it is."""
    rows = []
    for name in datasets.names():
        ds = datasets.get(name)
        for i, t in enumerate(ds.tables):
            rows.append({"name": name if i == 0 else f"{name}:{t.name}", "table": t.name,
                         "rows": len(datasets.load(f"{name}:{t.name}")), "licence": ds.licence,
                         "what": t.description})
    if as_json:
        emit_json({"datasets": rows})
        return
    print_rows(rows, ["name", "rows", "licence", "what"], title=f"{len(rows)} bundled tables "
               "(`scalinglab data show NAME` for the card; `fit --dataset NAME` fits one)")


@data.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show_cmd(name: str, as_json: bool) -> None:
    """The card of dataset NAME (source, citation, licence, our conversion) and its table's columns."""
    ds, table = datasets.split(name)
    df = datasets.load(f"{ds.name}:{table.name}")
    info = {"name": ds.name, "table": table.name, "title": ds.title, "citation": ds.citation,
            "source": ds.source, "licence": ds.licence, "rows": len(df), "columns": list(df.columns),
            "tables": [t.name for t in ds.tables], "example": ds.example, "card": ds.card}
    if as_json:
        emit_json(info)
        return
    click.echo(ds.card.rstrip())
    click.echo(f"\ntable {ds.name}:{table.name}: {len(df)} rows; columns: {', '.join(map(str, df.columns))}")
    click.echo(f"example: {ds.example}")


@data.command("export")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The file to write: .csv (the bundled file as it is), .tsv, .jsonl, .json or .parquet.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def export_cmd(name: str, out: str, as_json: bool) -> None:
    """Write the table NAME (``NAME`` or ``NAME:TABLE``) to --out; a file in the bundled format is a copy."""
    suffix = table_suffix(out, _FORMATS)
    ds, table = datasets.split(name)
    check_out_file(out)
    df = datasets.load(f"{ds.name}:{table.name}")
    if suffix == Path(table.file).suffix:
        try:
            Path(out).write_bytes(datasets.raw_bytes(f"{ds.name}:{table.name}"))
        except OSError as exc:
            raise write_error(exc, out) from None
    else:
        write_table(df, out, suffix)
    info = {"out": out, "dataset": ds.name, "table": table.name, "rows": len(df), "licence": ds.licence}
    if as_json:
        emit_json(info)
    else:
        click.echo(f"wrote {len(df)} rows of {ds.name}:{table.name} ({ds.licence}; `scalinglab data show "
                   f"{ds.name}` for its citation) to {out}")


__all__ = ["data"]

"""The report as data (sections of paragraphs, bullets, tables and charts), and its two renderings:
Markdown, and one self-contained HTML page that reads in a 1,300-pixel window."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Table:
    """A table; `notes` stand under it as a numbered list, each keyed by its number in a row's note cell."""

    columns: tuple[str, ...]
    rows: list[list[str]]
    title: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    """One section of the report; text may hold `code` spans."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, Path]] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    title: str
    intro: str
    sections: list[Section]


def markdown(report: Report) -> str:
    def table(t: Table) -> list[str]:
        lines = [f"**{t.title}**", ""] if t.title else []
        lines += ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in t.rows]
        return lines + ([""] + [f"{i}. {note}" for i, note in enumerate(t.notes, 1)] if t.notes else []) + [""]

    out = [f"# {report.title}", "", report.intro]
    for section in report.sections:
        out += ["", f"## {section.title}", ""]
        out += [text for paragraph in section.paragraphs for text in (paragraph, "")]
        out += [f"- {bullet}" for bullet in section.bullets] + ([""] if section.bullets else [])  # a table after a list
        out += [f"\n**{warning}**" for warning in section.warnings]
        out += [line for t in section.tables for line in table(t)]
        out += [f"### {title}\n\n![{title}]({path.name})\n" for title, path in section.images]
    return "\n".join(out) + "\n"


# Cells wrap at spaces and after slashes; a note is a key to the list under its table, so no row grows tall.
CSS = """body{font:15px/1.45 system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0 .5em}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}
th{background:#f3f3f3}td{overflow-wrap:anywhere}h4{margin:1.2em 0 0}ol.notes{font-size:12px;margin:0 0 1em;padding-left:2em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.warn{color:#a40}code{background:#f5f5f5}"""


def _inline(text: str) -> str:
    """Escaped text, with `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def page(report: Report) -> str:
    def table(t: Table) -> str:
        title = f"<h4>{html.escape(t.title)}</h4>" if t.title else ""
        head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in t.rows)
        notes = "".join(f"<li>{_inline(note)}</li>" for note in t.notes)
        return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" + (
            f'<ol class="notes">{notes}</ol>' if notes else ""
        )

    def img(path: Path) -> str:
        data = base64.b64encode(path.read_bytes()).decode()
        return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'

    body = [f"<h1>{html.escape(report.title)}</h1>", f"<p>{html.escape(report.intro)}</p>"]
    for section in report.sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [f"<p>{_inline(paragraph)}</p>" for paragraph in section.paragraphs]
        if section.bullets:
            body.append("<ul>" + "".join(f"<li>{_inline(bullet)}</li>" for bullet in section.bullets) + "</ul>")
        body += [f'<p class="warn">{html.escape(warning)}</p>' for warning in section.warnings]
        body += [table(t) for t in section.tables]
        body += [f"<h3>{html.escape(title)}</h3>{img(path)}" for title, path in section.images]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>'
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )

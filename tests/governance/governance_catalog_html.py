"""A small HTML reader for catalog tests (stdlib html.parser): links, resources, texts."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path


@dataclass
class Page:
    path: Path
    links: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    by_class: dict[str, list[str]] = field(default_factory=dict)
    text: str = ""


class _Reader(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.stack: list[tuple[str, list[str]]] = []
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self.page.links.append(a["href"])
        for key in ("src", "href") if tag in ("script", "link", "img", "iframe") else ("src",):
            if key in a:
                self.page.resources.append(a[key])
        if tag == "tr" and "data-type" in a:
            self.page.rows.append({k[5:]: v for k, v in a.items() if k.startswith("data-")})
        if tag not in ("br", "meta", "input", "img", "link", "rect"):
            self.stack.append((tag, a.get("class", "").split()))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        for _, classes in self.stack:
            for c in classes:
                self.page.by_class.setdefault(c, []).append(data)


def read(path: Path) -> Page:
    page = Page(path=path)
    reader = _Reader(page)
    reader.feed(path.read_text(encoding="utf-8"))
    page.text = " ".join(" ".join(reader.chunks).split())
    return page


def text_of(page: Page, cls: str) -> str:
    return " ".join(" ".join(page.by_class.get(cls, [])).split())

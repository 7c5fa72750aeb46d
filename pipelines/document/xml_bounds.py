"""A DOCX's XML, counted before anything builds objects from it.

python-docx turns every element of a part into a Python object as the document is walked, at tens of
microseconds each: a few KB of deflated `<w:p/>` expands to hundreds of thousands of elements and held a
worker for most of a minute. So every XML part of the package is streamed through lxml first, counting
elements and nesting as they are parsed; the count stops the parse as soon as a bound is passed, in a few
hundred milliseconds at most, before python-docx sees a byte.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

from lxml import etree

_XML_SUFFIXES = (".xml", ".rels")


class XmlTooLarge(Exception):
    """The package has more XML elements, or deeper nesting, than its bounds; str(exc) says which."""


@dataclass(frozen=True)
class XmlBounds:
    max_elements: int  # in all XML parts together
    max_depth: int  # of any one element


def check_xml(package: zipfile.ZipFile, bounds: XmlBounds) -> None:
    """Raise XmlTooLarge when the package's XML parts pass `bounds`; parse errors are python-docx's to report."""
    elements = 0
    for member in package.infolist():
        if not member.filename.lower().endswith(_XML_SUFFIXES):
            continue
        with package.open(member) as stream:
            depth = 0
            events = etree.iterparse(stream, events=("start", "end"), resolve_entities=False, no_network=True)
            try:
                for event, _ in events:  # the tree built meanwhile holds at most `max_elements`
                    if event == "end":
                        depth -= 1
                        continue
                    elements += 1
                    depth += 1
                    if elements > bounds.max_elements:
                        raise XmlTooLarge(
                            f"The DOCX file has more than {bounds.max_elements:,} XML elements; it is not processed."
                        )
                    if depth > bounds.max_depth:
                        raise XmlTooLarge(
                            f"The DOCX file nests XML elements more than {bounds.max_depth} deep; it is not processed."
                        )
            except etree.XMLSyntaxError:
                continue

"""Measures a page as a phone shows it: sideways scrolling and tap targets.

Shared by the phone browser tests (tests/dashboards/test_phone.py) and by
anyone surveying the app by hand. WCAG 2.2, 2.5.8 "Target Size (Minimum)":
every control at least 24 x 24 CSS px; the primary actions of a rep's day
(``data-primary``) at least 44 x 44 (2.5.5, the enhanced size).
"""

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}

CONTROLS = "a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]"

# Every visible control's size, smallest first. A control is visible when it
# has a box and is not clipped away as a screen-reader-only text (the skip
# link before it is focused, .visually-hidden).
TARGETS_JS = """
(selector) => {
  const out = [];
  for (const el of document.querySelectorAll(selector)) {
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") continue;
    if (el.closest(".visually-hidden, .skip-link")) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const name = el.getAttribute("aria-label") || el.innerText || el.value || el.name;
    const label = (name || el.tagName)
      .trim().replace(/\\s+/g, " ").slice(0, 50);
    out.push({
      tag: el.tagName.toLowerCase(), label: label,
      width: Math.round(box.width * 10) / 10, height: Math.round(box.height * 10) / 10,
      primary: el.hasAttribute("data-primary"),
    });
  }
  out.sort((a, b) => Math.min(a.width, a.height) - Math.min(b.width, b.height));
  return out;
}
"""

WIDTH_JS = "() => document.documentElement.scrollWidth"

# What sticks out past the right edge, to say which element made a page wide.
OVERFLOW_JS = """
(limit) => {
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.right > limit + 0.5 && box.width > 0) {
      let inScroller = false;
      for (let p = el.parentElement; p; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX;
        if (o === "auto" || o === "scroll" || o === "hidden") { inScroller = true; break; }
      }
      const where = el.tagName.toLowerCase() + "." + el.className;
      if (!inScroller) out.push(where + " " + Math.round(box.right));
    }
  }
  return out.slice(0, 8);
}
"""


def too_small(targets: list[dict], minimum: float = 24) -> list[dict]:
    return [t for t in targets if t["width"] < minimum or t["height"] < minimum]


def measure(page) -> dict:
    """The page's width, its controls (smallest first) and what overflows."""
    width = page.evaluate(WIDTH_JS)
    return {
        "width": width,
        "targets": page.evaluate(TARGETS_JS, CONTROLS),
        "overflow": page.evaluate(OVERFLOW_JS, page.viewport_size["width"])
        if width > page.viewport_size["width"]
        else [],
    }

"""Render a figure as it is saved and list every drawn text that reaches past the canvas."""

import io

from matplotlib.text import Text


def texts_outside(fig, dpi=110, tolerance=1.0):
    """(text, box) for every text artist drawn by ``fig.savefig`` whose extent leaves the figure."""
    drawn = []
    original = Text.draw

    def draw(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self.get_text(), self.get_window_extent(renderer), renderer.width, renderer.height))

    Text.draw = draw
    try:
        fig.savefig(io.BytesIO(), format="png", dpi=dpi)
    finally:
        Text.draw = original
    outside = {}
    for text, box, width, height in drawn:              # the canvas as rendered, at the saving dpi
        if (box.x0 < -tolerance or box.y0 < -tolerance or box.x1 > width + tolerance
                or box.y1 > height + tolerance):
            outside[text] = box
    return list(outside.items())

"""Generated still images for demo cameras (stream URL `demo:...`): an SVG frame that shows
which camera, where it looks, when, and for whom, so a demo needs no video system."""

from __future__ import annotations

from html import escape

from smartcity.operations.links import LinkClaims


def demo_frame(name: str, view_direction: float | None, at: str, claims: LinkClaims) -> str:
    """Return an SVG still of a demo camera."""
    direction = 0.0 if view_direction is None else view_direction
    mode = "녹화 영상 recorded" if claims.mode == "recorded" else "실시간 live"
    moment = claims.at if claims.mode == "recorded" and claims.at else at
    size = 'width="640" height="360" viewBox="0 0 640 360"'
    return f"""<svg xmlns="http://www.w3.org/2000/svg" {size}>
<rect width="640" height="360" fill="#1f2937"/>
<g stroke="#374151" stroke-width="1">{
        "".join(f'<line x1="{x}" y1="0" x2="{x}" y2="360"/>' for x in range(0, 641, 40))
    }{"".join(f'<line x1="0" y1="{y}" x2="640" y2="{y}"/>' for y in range(0, 361, 40))}</g>
<g transform="translate(320 185) rotate({direction:.1f})">
<path d="M0 0 L-55 -120 A132 132 0 0 1 55 -120 Z" fill="#fbbf24" fill-opacity="0.25"/>
<circle r="8" fill="#fbbf24"/></g>
<g font-family="sans-serif" fill="#f9fafb">
<text x="16" y="30" font-size="18">{escape(name)}</text>
<text x="16" y="54" font-size="13" fill="#d1d5db">{escape(claims.camera_id)}</text>
<text x="16" y="334" font-size="14">{escape(mode)} · {escape(moment)}</text>
<text x="624" y="30" font-size="13" text-anchor="end">{escape(claims.incident_id)}</text>
<text x="624" y="334" font-size="13" text-anchor="end">{escape(claims.subject)}</text>
<text x="624" y="54" font-size="12" text-anchor="end" fill="#fca5a5">DEMO 시연용</text>
</g></svg>"""

"""The landing page: what this server is, what it holds, where the API docs are (ko/en)."""

from __future__ import annotations

from html import escape

from smartcity import __version__
from smartcity.auth.principal import Caller
from smartcity.platform import Platform

PAGE = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>창동 스마트시티 플랫폼 · Changdong Smart City Platform</title>
<style>
body{{font-family:system-ui,"Noto Sans KR",sans-serif;margin:0;background:#f5f7fa;color:#1d2733}}
header{{background:#123b6d;color:#fff;padding:1.2rem 2rem}}
header h1{{margin:0;font-size:1.4rem}} header p{{margin:.3rem 0 0;opacity:.85}}
main{{max-width:60rem;margin:1.5rem auto;padding:0 1rem}}
section{{background:#fff;border-radius:8px;padding:1rem 1.5rem;margin-bottom:1rem;
box-shadow:0 1px 3px rgba(0,0,0,.08)}}
table{{border-collapse:collapse;width:100%}} td,th{{text-align:left;padding:.4rem;
border-bottom:1px solid #e3e8ef}} a{{color:#0b63ce}} .en{{color:#5b6b7d;font-size:.9em}}
header .en{{color:#c9d6e8}}
</style></head><body>
<header><h1>창동 스마트시티 통합플랫폼 <span class="en">Changdong Smart City Platform</span></h1>
<p>NGSI-LD 컨텍스트 브로커 · NGSI-LD context broker · v{version}</p></header>
<main>
<section><h2>통합상황관제 <span class="en">Operations center</span></h2>
<p><a href="/ops">상황관제 대시보드</a>
<span class="en">incidents on the live map, SOPs, 112 video sharing (sign-in)</span></p></section>
<section><h2>실시간 지도 <span class="en">Live map</span></h2>
<p><a href="/map">지역의 기기와 최신 측정값 보기</a>
<span class="en">the district's devices and their latest readings, live</span></p></section>
<section><h2>API <span class="en">interfaces</span></h2><ul>
<li><a href="/docs">API 문서 (OpenAPI)</a> <span class="en">API documentation</span></li>
<li><a href="/ngsi-ld/v1/types">/ngsi-ld/v1/types</a> — 엔터티 유형
<span class="en">entity types</span></li>
<li><a href="/health">/health</a> · <a href="/metrics">/metrics</a></li></ul></section>
<section><h2>보유 데이터 <span class="en">What the broker holds</span></h2>
<table><tr><th>유형 <span class="en">type</span></th>
<th>개수 <span class="en">count</span></th></tr>
{rows}</table></section>
</main></body></html>
"""


def home_page(platform: Platform) -> str:
    """Render the landing page with the public entity types and counts of the default tenant."""
    visitor = Caller.anonymous() if platform.settings.auth else Caller.system()
    rows = (
        "".join(
            f'<tr><td><a href="/ngsi-ld/v1/entities?type={escape(s.type)}&amp;limit=100">'
            f"{escape(s.type.rsplit('/', 1)[-1])}</a></td><td>{s.count}</td></tr>"
            for s in platform.entities.type_summaries(visitor)
        )
        or '<tr><td colspan="2">아직 없음 · none yet</td></tr>'
    )
    return PAGE.format(version=__version__, rows=rows)

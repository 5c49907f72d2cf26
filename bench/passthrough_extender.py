"""The cheapest extender kube-scheduler can call, the yardstick for jitnode's (issue 11):
filter echoes ``NodeNames``, prioritize scores every candidate 0. aiohttp and orjson, on uvloop
when installed as jitnode is, so a comparison measures the extender, not the event loop.

``python bench/passthrough_extender.py PORT [PREFIX]``
"""

import sys

import orjson
from aiohttp import web


async def filter_(request: web.Request) -> web.Response:
    names = orjson.loads(await request.read())["NodeNames"]
    body = {
        "NodeNames": names,
        "Nodes": None,
        "FailedNodes": {},
        "FailedAndUnresolvableNodes": {},
        "Error": "",
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def prioritize(request: web.Request) -> web.Response:
    names = orjson.loads(await request.read())["NodeNames"]
    return web.Response(
        body=orjson.dumps([{"Host": n, "Score": 0} for n in names]), content_type="application/json"
    )


if __name__ == "__main__":
    prefix = sys.argv[2] if len(sys.argv) > 2 else "/jitnode"
    app = web.Application()
    app.router.add_post(f"{prefix}/filter", filter_)
    app.router.add_post(f"{prefix}/prioritize", prioritize)
    try:
        import uvloop
    except ImportError:
        uvloop = None  # type: ignore[assignment]
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop() if uvloop else None,
    )

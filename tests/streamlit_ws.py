"""A protocol-level Streamlit client: what a browser tab says over ``/_stcore/stream``, no browser.

It speaks Streamlit's own protobuf messages (``BackMsg`` out, ``ForwardMsg`` in): asks for a run
of a page with the widget values a user would have set, and reads back the elements drawn until
the script finishes. The deployment test (tests/test_deploy.py) and the load test
(benchmarks/bench_load.py) drive the app through nginx with it; one such session costs a
WebSocket and a few kilobytes, where a Chromium costs a process and a core.

    async with StreamlitSession("http://127.0.0.1:8640", route="user-7") as app:
        await app.run()
        await app.sign_in("staff", "staff-demo-password")
        run = await app.run(page="Explore", values={"freq": "Quarters"})

Cookies are kept as a browser keeps them for the site: the proxy's ``vru_route`` and, after
:meth:`StreamlitSession.sign_in`, the app's ``vru_session``, sent on every connection and request
with the one User-Agent the session is bound to.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

# Widgets whose value goes over the wire as the option's label; the rest by their own type.
_STRING_VALUE = {"selectbox", "radio", "text_input", "text_area"}
# The hidden fields of the hand-over form the sign-in page draws (dashboards/session_routes.py).
_HANDOVER_FIELD = re.compile(r'<input type="hidden" name="(code|next)" value="([^"]*)">')
USER_AGENT = "vru-protocol-client/1"


def handover_form(body: str) -> dict[str, str]:
    """The fields (``code``, ``next``) of the hand-over form in the sign-in page's HTML."""
    return {name: html.unescape(value) for name, value in _HANDOVER_FIELD.findall(body)}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None  # keep the 303 and its Set-Cookie; the caller reconnects instead


class AppError(RuntimeError):
    """The app showed an exception, or the connection failed, during a run."""


@dataclass
class Run:
    """What one run of the script drew, and how long it took from the message to its finish."""

    seconds: float
    elements: list[Any] = field(default_factory=list)  # streamlit.proto Element messages

    def texts(self) -> list[str]:
        out = []
        for element in self.elements:
            kind = element.WhichOneof("type")
            if kind in ("markdown", "text", "heading", "alert"):
                out.append(getattr(element, kind).body)
            elif kind == "metric":
                out.append(f"{element.metric.label}: {element.metric.body}")
        return out

    def errors(self) -> list[str]:
        """Exceptions and error boxes on the page (a refusal shown to the user counts too)."""
        found = []
        for element in self.elements:
            kind = element.WhichOneof("type")
            if kind == "exception":
                found.append(f"exception: {element.exception.type}: {element.exception.message}")
            elif kind == "alert" and element.alert.format == Alert.ERROR:
                found.append(f"error box: {element.alert.body}")
        return found

    def metric(self, label: str) -> str:
        for element in self.elements:
            if element.WhichOneof("type") == "metric" and element.metric.label == label:
                return element.metric.body
        raise KeyError(f"no metric {label!r} on the page")


class StreamlitSession:
    """One browser tab's session with the app at ``base`` (http://host:port).

    ``route`` is sent as the ``vru_route`` cookie the proxy routes on (deploy/nginx): the same
    route always reaches the same app process while it is up. ``cookies`` are the browser's
    cookies for the site (name -> value): pass another session's to act as another tab of the
    same browser.
    """

    def __init__(
        self,
        base: str,
        *,
        route: str | None = None,
        timeout: float = 120,
        cookies: dict[str, str] | None = None,
    ) -> None:
        self.base = base.rstrip("/")
        self.url = base.replace("http", "ws", 1).rstrip("/") + "/_stcore/stream"
        self.cookies: dict[str, str] = dict(cookies or {})
        if route:
            self.cookies["vru_route"] = route
        self.timeout = timeout
        self.pages: dict[str, str] = {}  # page title -> page_script_hash
        self.page_hash = ""
        self.widgets: dict[str, Any] = {}  # widget key (or label) -> its Element proto
        self._values: dict[str, WidgetState] = {}  # widget id -> the value this "user" set
        self._ws: Any = None

    async def __aenter__(self) -> StreamlitSession:
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    async def connect(self) -> None:
        self._ws = await websockets.connect(
            self.url,
            subprotocols=["streamlit"],  # type: ignore[list-item]
            additional_headers=self._cookie_header(),
            user_agent_header=USER_AGENT,
            max_size=None,
            open_timeout=self.timeout,
            ping_interval=None,  # as a browser: the server pings, the client only answers
        )

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    def _widget_state(self, key: str, value: Any) -> WidgetState:
        element = self.widgets.get(key)
        if element is None:
            raise KeyError(f"no widget {key!r} on the page; there are {sorted(self.widgets)}")
        kind = element.WhichOneof("type")
        proto = getattr(element, kind)
        state = WidgetState(id=proto.id)
        if kind in ("button", "download_button"):
            state.trigger_value = bool(value)
        elif kind in _STRING_VALUE:
            state.string_value = str(value)
        elif kind == "multiselect":
            state.string_array_value.data.extend(str(v) for v in value)
        elif kind == "number_input":
            if proto.data_type == proto.INT:
                state.int_value = int(value)
            else:
                state.double_value = float(value)
        elif kind == "checkbox":
            state.bool_value = bool(value)
        else:
            raise TypeError(f"this client cannot set a {kind} widget ({key!r})")
        return state

    async def run(
        self, page: str | None = None, values: dict[str, Any] | None = None, click: str = ""
    ) -> Run:
        """Ask for a run (of ``page``, by title, or the current one) with ``values`` set on the
        widgets named by key and the button ``click`` (key or label) pressed; wait for the end.
        Widgets are those the last run drew: open a page first, then set its widgets.
        Raises :class:`AppError` when the run shows an exception."""
        if page is not None and (values or click):
            raise ValueError("open the page first, then set its widgets in the next run")
        if page is not None:
            if page not in self.pages:
                raise KeyError(f"no page {page!r}; the app offers {sorted(self.pages)}")
            self.page_hash = self.pages[page]
            self._values.clear()  # a new page starts from its own defaults
        states = dict(self._values)
        for key, value in (values or {}).items():
            state = self._widget_state(key, value)
            states[state.id] = self._values[state.id] = state
        if click:
            trigger = self._widget_state(click, True)
            states[trigger.id] = trigger  # a press is sent once, never kept
        message = BackMsg(
            rerun_script=ClientState(
                query_string="",
                page_script_hash=self.page_hash,
                widget_states=WidgetStates(widgets=list(states.values())),
            )
        )
        started = time.perf_counter()
        await self._ws.send(message.SerializeToString())
        elements = await asyncio.wait_for(self._until_finished(), self.timeout)
        run = Run(time.perf_counter() - started, elements)
        exceptions = [e for e in run.errors() if e.startswith("exception")]
        if exceptions:
            raise AppError(exceptions[0])
        return run

    async def _until_finished(self) -> list[Any]:
        elements: list[Any] = []
        widgets: dict[str, Any] = {}
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await self._ws.recv())
            kind = msg.WhichOneof("type")
            if kind == "navigation":
                self.pages = {p.page_name: p.page_script_hash for p in msg.navigation.app_pages}
                self.page_hash = msg.navigation.page_script_hash or self.page_hash
            elif kind == "new_session":
                elements.clear()
                widgets.clear()
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                elements.append(element)
                widget = element.WhichOneof("type")
                proto = getattr(element, widget, None)
                if widget and getattr(proto, "id", "").startswith("$$ID"):
                    key = proto.id.split("-", 2)[-1]  # $$ID-<hash>-<key>, "None" for no key
                    label = getattr(proto, "label", "")
                    widgets[label if key == "None" else key] = element
                    widgets.setdefault(label, element)
            elif kind == "script_finished":
                status = msg.script_finished
                if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    elements.clear()  # st.rerun(): the next run follows on its own
                    widgets.clear()
                    continue
                if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    raise AppError("the page failed to compile")
                self.widgets = widgets
                return elements

    async def sign_in(self, username: str, password: str) -> Run:
        """Sign in as a browser does: submit the password form (the page must be showing it),
        post the one-time code the page hands over to ``/_vru/session`` (with this client's
        cookies and User-Agent), keep the session cookie it sets, then reconnect with it (the
        browser reloads the page after the redirect). Returns the first run signed in."""
        self._values.clear()
        run = await self.run(
            values={"sign_in_username": username, "sign_in_password": password}, click="Sign in"
        )
        self._values.clear()
        handover = [e.html.body for e in run.elements if e.WhichOneof("type") == "html"]
        form = handover_form(handover[0]) if handover else {}
        if "code" not in form:  # no cookie routes (plain `streamlit run`): signed in this tab
            signed_in = run
        else:
            await asyncio.to_thread(self._take_session, form)
            await self.close()
            await self.connect()
            signed_in = await self.run()
        if not any(t.startswith("Signed in as") for t in signed_in.texts()):
            raise AppError(
                f"sign-in as {username} failed: {signed_in.errors() or signed_in.texts()[:3]}"
            )
        return signed_in

    def _take_session(self, form: dict[str, str]) -> None:
        """POST the hand-over form; keep the cookies of the (303) answer."""
        request = urllib.request.Request(
            self.base + "/_vru/session",
            data=urllib.parse.urlencode(form).encode(),
            # A browser names the page's origin on a form post; the route refuses another's.
            headers={"User-Agent": USER_AGENT, "Origin": self.base, **self._cookie_header()},
        )
        self.cookies.pop("vru_session", None)  # an old one must not pass for the new
        try:
            urllib.request.build_opener(_NoRedirect).open(request, timeout=self.timeout)
            raise AppError("the session route answered without its redirect")
        except urllib.error.HTTPError as answer:  # the 303, unfollowed
            if answer.code != 303:
                raise AppError(f"the session route answered {answer.code}") from None
            for header in answer.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
        if "vru_session" not in self.cookies:
            raise AppError("the session route set no session cookie (code refused)")

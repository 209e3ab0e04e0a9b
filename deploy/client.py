"""The original Pygmy's client program, rewritten: its three calls.

The original's `client.py` is not in this repository; this is a small
Python 3 (standard library only) client making the same three calls over
the original API, which Pygmy's front end serves unchanged:

    GET /search?topic=T   -> {"item": [{"id", "title", ...}], "status": "Success", ...}
    GET /lookup?id=N      -> {"item": [book], ...}
    GET /buy?id=N         -> {"status": "Success", "order": {"id": N}, ...}

Failures answer {"status": "Failed", "validation_code": C, "message": ...}
with C the HTTP status. Run it as a program for one session:

    python3 deploy/client.py http://127.0.0.1:8010
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

TOPICS = ["distributed systems", "graduate school"]


class Failed(Exception):
    """A call that did not succeed: HTTP status (0: no answer) and message."""

    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def call(base, path, params, timeout=5.0):
    """GET base/path?params; the decoded envelope of a successful answer."""
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = json.load(answer)
    except urllib.error.HTTPError as e:
        try:
            message = json.load(e).get("message", "")
        except ValueError:
            message = ""
        raise Failed(e.code, message) from None
    except (OSError, ValueError) as e:
        raise Failed(0, str(e)) from None
    if body.get("status") != "Success":
        raise Failed(body.get("validation_code", 0), body.get("message", ""))
    return body


def search(base, topic):
    """The books of a topic: [(id, title)]."""
    return [(b["id"], b["title"]) for b in call(base, "/search", {"topic": topic})["item"]]


def lookup(base, item):
    """One book: {"id", "title", "cost", "count", "topic"}."""
    return call(base, "/lookup", {"id": item})["item"][0]


def buy(base, item):
    """Buys one copy; the new order's id."""
    return call(base, "/buy", {"id": item})["order"]["id"]


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8010"
    for topic in TOPICS:
        for item, title in search(base, topic):
            book = lookup(base, item)
            print(f"{item}: {title} ({book['count']} in stock, cost {book['cost']})")
    print(f"bought order {buy(base, 1)}")


if __name__ == "__main__":
    main()

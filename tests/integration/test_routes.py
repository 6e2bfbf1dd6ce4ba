"""The route table over real HTTP: HEAD answers like GET without a body, and a known path
with another method is 405 with an Allow header (the unit test walks the whole table)."""

P = "/v2.0/p1/resources"


def test_head_answers_like_get_without_a_body(server, nginx):
    r = server.api("POST", f"{P}/pyfiles", json={"paths": [f"{nginx.url}/a.py"], "group": "g"})
    assert r.status_code == 200, r.text
    for path in (P, f"{P}/a.py?group=g", f"{P}/a.py/content?group=g", "/healthz"):
        get = server.api("GET", path)
        head = server.api("HEAD", path)
        assert (head.status_code, get.status_code) == (200, 200), path
        assert head.content == b"", path
        if "Transfer-Encoding" in get.headers:  # the whole listing is written as it is read
            assert head.headers["Transfer-Encoding"] == get.headers["Transfer-Encoding"], path
            assert "Content-Length" not in head.headers, path
        else:
            assert head.headers["Content-Length"] == str(len(get.content)), path
        assert head.headers["Content-Type"] == get.headers["Content-Type"], path
    # A HEAD for a missing package is the same 404 as a GET, still without a body.
    missing = server.api("HEAD", f"{P}/nope.py")
    assert (missing.status_code, missing.content) == (404, b"")


def test_wrong_method_is_405_with_allow(server):
    r = server.api("PATCH", f"{P}/owner")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, PUT, DELETE"
    assert r.json()["error_code"] == "APIGW.0101"
    # The connection stays usable after it.
    assert server.api("GET", "/healthz").status_code == 200

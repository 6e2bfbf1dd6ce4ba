"""The one AWS Signature Version 4 checker of the tests: verifies an S3 request as a strict
object store does, so a client that signs what it did not send fails here as it would there.

Used by the fake S3 paths of the fetcher's test server (tests/unit/adapters/sources/
curl_fetcher_test.cpp) and checked against AWS's published example by
tests/integration/test_sigv4_checker.py. Pure functions; safe from any thread.

check(method, path, query, headers, keys) rebuilds the canonical request from the request as
received (path and query decoded once and re-encoded) and answers None when the signature is
right, else (HTTP status, S3 error code), as S3 would.
"""
import hashlib
import hmac
import re
import urllib.parse

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def _canonical(text, safe):
    return urllib.parse.quote(urllib.parse.unquote(text), safe=safe)


def canonical_request(method, path, query, headers, signed_headers):
    """The canonical request of SigV4 for a request as received; `headers` is a mapping whose
    get() is case-insensitive (http.server's message) or has lower-case keys."""
    params = sorted((_canonical(k, "-_.~"), _canonical(v, "-_.~"))
                    for k, _, v in (p.partition("=") for p in query.split("&") if p))
    return "\n".join([
        method, _canonical(path, "/-_.~"), "&".join("%s=%s" % kv for kv in params),
        "".join("%s:%s\n" % (h, " ".join(str(headers.get(h, "")).split()))
                for h in signed_headers.split(";")),
        signed_headers, headers.get("x-amz-content-sha256", "")])


def signature(secret, day, region, amz_date, request):
    """The hex signature of a canonical request with the secret key."""
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, "%s/%s/s3/aws4_request" % (day, region),
                         hashlib.sha256(request.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def check(method, path, query, headers, keys, region="us-east-1"):
    """None when the request is signed right by one of `keys` ({access key: secret}), else the
    (status, S3 error code) a strict store answers."""
    auth = AUTHORIZATION.match(headers.get("Authorization", "") or "")
    if not auth:
        return 403, "AccessDenied"
    if not headers.get("x-amz-content-sha256"):
        return 400, "InvalidRequest"
    key_id, day, signed_region, signed, given = auth.groups()
    if key_id not in keys or signed_region != region:
        return 403, "InvalidAccessKeyId"
    if "host" not in signed.split(";"):
        return 403, "AccessDenied"
    request = canonical_request(method, path, query, headers, signed)
    expected = signature(keys[key_id], day, region, headers.get("x-amz-date", ""), request)
    if not hmac.compare_digest(expected, given):
        return 403, "SignatureDoesNotMatch"
    return None

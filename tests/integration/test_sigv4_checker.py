"""The tests' one SigV4 checker (tests/testing/sigv4.py) against AWS's published example
(the S3 "GET Object" example of the Signature Version 4 documentation), so that a fetcher test
that passes through it passed a checker known to be right, and one it refuses was refused for
a reason a real store would give."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "testing"))
import sigv4  # noqa: E402

KEYS = {"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
EXAMPLE_SIGNATURE = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def example_headers(signature=EXAMPLE_SIGNATURE, key="AKIAIOSFODNN7EXAMPLE", region="us-east-1"):
    return {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256":
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-amz-date": "20130524T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=%s/20130524/%s/s3/aws4_request, "
                         "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                         "Signature=%s" % (key, region, signature),
    }


def test_the_published_example_passes():
    assert sigv4.check("GET", "/test.txt", "", example_headers(), KEYS) is None


def test_a_changed_byte_of_the_request_fails_the_signature():
    assert sigv4.check("GET", "/test.txv", "", example_headers(), KEYS) == \
        (403, "SignatureDoesNotMatch")
    assert sigv4.check("GET", "/test.txt", "x=1", example_headers(), KEYS) == \
        (403, "SignatureDoesNotMatch")
    headers = example_headers()
    headers["range"] = "bytes=0-10"
    assert sigv4.check("GET", "/test.txt", "", headers, KEYS) == (403, "SignatureDoesNotMatch")


def test_unsigned_unknown_key_and_other_region_are_refused():
    headers = example_headers()
    del headers["Authorization"]
    assert sigv4.check("GET", "/test.txt", "", headers, KEYS) == (403, "AccessDenied")
    assert sigv4.check("GET", "/test.txt", "", example_headers(key="NOBODY"), KEYS) == \
        (403, "InvalidAccessKeyId")
    assert sigv4.check("GET", "/test.txt", "", example_headers(region="eu-west-1"), KEYS) == \
        (403, "InvalidAccessKeyId")


def test_a_missing_payload_hash_is_an_invalid_request():
    headers = example_headers()
    del headers["x-amz-content-sha256"]
    assert sigv4.check("GET", "/test.txt", "", headers, KEYS) == (400, "InvalidRequest")

"""A minimal S3 client for the tests: AWS Signature V4 by hand (hmac/hashlib), requests for I/O.

Used to create buckets and objects in the Swift+s3api test server (scripts/swift_s3.sh) with
signed requests, independently of the server's own signing (libcurl), so a bug in one is not
hidden by the same bug in the other. Path-style addressing only.
"""
import datetime
import hashlib
import hmac
import html
import re
import urllib.parse

import requests

UNRESERVED = "-_.~"


def encode_key(key):
    """An object key as a canonical URL path: every byte outside A-Z a-z 0-9 - _ . ~ / encoded."""
    return urllib.parse.quote(key.encode(), safe="/" + UNRESERVED)


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(method, url, access_key, secret_key, region, payload_hash, now=None):
    """Headers (Authorization, x-amz-date, x-amz-content-sha256) signing `url` as given.

    `url` must already be canonical (encoded path, no query): it is signed byte for byte.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    parts = urllib.parse.urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{now:%Y%m%d}/{region}/s3/aws4_request"
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, parts.path or "/", parts.query,
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed,
                           payload_hash])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (f"{now:%Y%m%d}", region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                         f"SignedHeaders={signed}, Signature={signature}",
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
    }


class S3Client:
    def __init__(self, endpoint, access_key="test:tester", secret_key="testing",
                 region="us-east-1"):
        self.endpoint = endpoint.rstrip("/")
        self.access_key, self.secret_key, self.region = access_key, secret_key, region

    def url(self, bucket, key=""):
        return f"{self.endpoint}/{bucket}" + (f"/{encode_key(key)}" if key else "")

    def request(self, method, bucket, key="", data=b""):
        url = self.url(bucket, key)
        headers = sign(method, url, self.access_key, self.secret_key, self.region,
                       hashlib.sha256(data).hexdigest())
        return requests.request(method, url, data=data, headers=headers, timeout=30)

    def create_bucket(self, bucket):
        r = self.request("PUT", bucket)
        # 409: it exists already (a second session fixture in the same Swift).
        assert r.status_code in (200, 409), r.text
        return r

    def put_object(self, bucket, key, data):
        r = self.request("PUT", bucket, key, data)
        assert r.status_code == 200, r.text
        return r

    def get_object(self, bucket, key):
        return self.request("GET", bucket, key)

    def list_keys(self, bucket, prefix):
        """Every key under `prefix` (ListObjectsV2, all pages)."""
        keys, token = [], None
        while True:
            params = {"list-type": "2", "prefix": prefix}
            if token:
                params["continuation-token"] = token
            query = "&".join(f"{k}={urllib.parse.quote(v, safe=UNRESERVED)}"
                             for k, v in sorted(params.items()))
            url = f"{self.url(bucket)}?{query}"
            headers = sign("GET", url, self.access_key, self.secret_key, self.region,
                           hashlib.sha256(b"").hexdigest())
            r = requests.get(url, headers=headers, timeout=30)
            assert r.status_code == 200, r.text
            keys += re.findall(r"<Key>([^<]*)</Key>", r.text)
            token = re.search(r"<NextContinuationToken>([^<]*)<", r.text)
            if "<IsTruncated>true</IsTruncated>" not in r.text or not token:
                return keys
            token = html.unescape(token.group(1))

    def list_uploads(self, bucket, prefix):
        """(key, upload id) of the multipart uploads in progress under `prefix` (one page)."""
        url = f"{self.url(bucket)}?prefix={urllib.parse.quote(prefix, safe=UNRESERVED)}&uploads="
        headers = sign("GET", url, self.access_key, self.secret_key, self.region,
                       hashlib.sha256(b"").hexdigest())
        r = requests.get(url, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        return re.findall(r"<Upload>.*?<Key>([^<]*)</Key>.*?<UploadId>([^<]*)</UploadId>", r.text,
                          re.S)

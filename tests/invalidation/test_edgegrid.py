"""EdgeGrid signing against the reference vectors Akamai publishes with its client libraries
(the shared ``testdata.json``: same credentials, timestamp and nonce; no signed headers)."""

from __future__ import annotations

import pytest

from invalidation.purgers.edgegrid import (
    EdgeGridCredentials,
    authorization,
    edgegrid_timestamp,
    parse_authorization,
    unsigned_part,
)

CREDENTIALS = EdgeGridCredentials(
    client_token="akab-client-token-xxx-xxxxxxxxxxxxxxxx",
    client_secret="xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=",
    access_token="akab-access-token-xxx-xxxxxxxxxxxxxxxx",
)
BASE = "https://akaa-baseurl-xxxxxxxxxxx-xxxxxxxxxxxxx.luna.akamaiapis.net"
TIMESTAMP = "20140321T19:34:21+0000"
NONCE = "nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"


@pytest.mark.parametrize(
    ("method", "path", "body", "signature"),
    [
        ("GET", "/", b"", "tL+y4hxyHxgWVD30X3pWnGKHcPzmrIF+LThiAOhMxYU="),
        ("GET", "/testapi/v1/t1?p1=1&p2=2", b"", "hKDH1UlnQySSHjvIcZpDMbQHihTQ0XyVAKZaApabdeA="),
        (
            "POST",
            "/testapi/v1/t3",
            b"datadatadatadatadatadatadatadata",
            "hXm4iCxtpN22m4cbZb4lVLW5rhX8Ca82vCFqXzSTPe4=",
        ),
        ("POST", "/testapi/v1/t6", b"", "1gEDxeQGD5GovIkJJGcBaKnZ+VaPtrc4qBUHixjsPCQ="),
        (
            "PUT",
            "/testapi/v1/t6",
            b"PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP",
            "GNBWEYSEWOLtu+7dD52da2C39aX/Jchpon3K/AmBqBU=",
        ),
    ],
    ids=["simple-get", "get-query", "post-body", "post-empty", "put-body-unhashed"],
)
def test_reference_vectors(method: str, path: str, body: bytes, signature: str) -> None:
    header = authorization(CREDENTIALS, method, BASE + path, body, timestamp=TIMESTAMP, nonce=NONCE)
    assert header == (
        f"EG1-HMAC-SHA256 client_token={CREDENTIALS.client_token};"
        f"access_token={CREDENTIALS.access_token};timestamp={TIMESTAMP};nonce={NONCE};"
        f"signature={signature}"
    )


def test_timestamp_format_and_header_parsing() -> None:
    assert edgegrid_timestamp(1395430461.0) == TIMESTAMP
    header = authorization(
        CREDENTIALS, "POST", BASE + "/x", b"{}", timestamp=TIMESTAMP, nonce=NONCE
    )
    fields = parse_authorization(header)
    assert (fields["client_token"], fields["nonce"]) == (CREDENTIALS.client_token, NONCE)
    assert unsigned_part(header) + "signature=" + fields["signature"] == header
    with pytest.raises(ValueError, match="EG1-HMAC-SHA256"):
        parse_authorization("Bearer abc")

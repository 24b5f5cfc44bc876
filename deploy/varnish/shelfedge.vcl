#
# shelfedge: Varnish Cache 7.1+ in front of the origin context service.
#
# What it does
#   - caches the origin's shared, visitor-free fragment bundles (/v1/bundles/*, /v1/fragments/*)
#     for the lifetime the origin chose: TTL from Surrogate-Control max-age (falling back to
#     Varnish's own parse of Cache-Control s-maxage / max-age);
#   - stale-while-revalidate: within that window a stale bundle is served at once while ONE
#     background fetch refreshes it;
#   - stale-if-error: within that window a stale bundle is served when the origin is sick
#     (health probe) or a fetch fails (connection error or 5xx);
#   - tag purges through the xkey vmod: `PURGE` with `xkey-purge: tag1 tag2` (hard) or
#     `xkey-softpurge: tag1 tag2` (soft: stale, still usable for grace and revalidation),
#     allowed from the `shelfedge_purgers` ACL only, answering 200 with `X-Purged: <count>`;
#   - never caches a response with Set-Cookie or Cache-Control private / no-store.
#
# It must never put a visitor identifier into a cache key (the hash is host + URL; cookies are
# dropped only on the shared bundle routes, which never read them) and never cache a
# personalised response.
#
# Backend address: the backend below holds two envsubst-style placeholders, one for the origin
# host and one for its port; render them before varnishd loads the file (README.md next to this
# file has the command). A file with the placeholders left in does not compile.
#
# How the two stale windows map onto Varnish 7.1 (which only ever *delivers* objects within
# ttl + grace; objects in `keep` are only used to revalidate with If-None-Match):
#   beresp.ttl   = max-age
#   beresp.grace = max(stale-while-revalidate, stale-if-error)   -- every second stale may be served
#   beresp.keep  = stale-if-error                                -- cheap 304 revalidation afterwards
# and the stale-while-revalidate limit is applied per object in vcl_hit: past it, while the
# origin is healthy, the request restarts with req.grace capped to stale-while-revalidate, so it
# becomes a (coalesced, conditional) miss; if that fetch fails, the request restarts once more
# without the cap and gets the stale object (X-Cache: HIT-STALE-IF-ERROR).
#
# Internal request/object headers all start with X-SE- and are removed before delivery.
#

vcl 4.1;

import std;
import xkey;

probe shelfedge_ready {
    # Ready = the origin answers and Redis answers it (503 otherwise).
    .url = "/readyz";
    .interval = 2s;
    .timeout = 1s;
    .window = 5;
    .threshold = 3;
    .initial = 3;
    .expected_response = 200;
}

backend shelfedge_origin {
    .host = "${SHELFEDGE_ORIGIN_HOST}";
    .port = "${SHELFEDGE_ORIGIN_PORT}";
    .connect_timeout = 1s;
    .first_byte_timeout = 5s;
    .between_bytes_timeout = 2s;
    .probe = shelfedge_ready;
}

acl shelfedge_purgers {
    # Who may PURGE. Add the invalidation consumer's address (or subnet) here.
    "127.0.0.1";
    "::1";
}

# ---------------------------------------------------------------------------------------------
# Client side

sub vcl_recv {
    if (req.restarts == 0) {
        # Internal headers are ours alone: never trust a client that sends them.
        unset req.http.X-SE-Grace-Cap;
        unset req.http.X-SE-Stale-If-Error;
        unset req.http.X-SE-Cache;
        unset req.http.X-SE-Purged;
    }

    if (req.method == "PURGE") {
        call shelfedge_purge;
    }

    if (req.url ~ "^/v1/(bundles|fragments)/") {
        # Shared, visitor-free resources: the origin never reads cookies on these routes, so a
        # shopper's cookies must not turn them into passes. Sorting the query makes
        # ?variant=a&segment=b and ?segment=b&variant=a one object.
        unset req.http.Cookie;
        set req.url = std.querysort(req.url);
    }

    if (req.http.X-SE-Grace-Cap) {
        # Restarted from vcl_hit: the stale copy is past its stale-while-revalidate window and
        # the origin looks healthy, so only serve stale within that window (i.e. fetch now).
        set req.grace = std.duration(req.http.X-SE-Grace-Cap, 0s);
    } elsif (req.http.X-SE-Stale-If-Error) {
        # Restarted because that fetch failed: lift the cap (req.grace survives restarts), so
        # the object's own grace, which covers stale-if-error, applies again.
        set req.grace = 3650d;
    }
    # Fall through to the built-in vcl_recv: Host checks, non-GET/HEAD pass, Authorization and
    # Cookie (on other routes) pass.
}

sub shelfedge_purge {
    if (client.ip !~ shelfedge_purgers) {
        return (synth(403, "PURGE is not allowed from this address"));
    }
    if (!req.http.xkey-purge && !req.http.xkey-softpurge) {
        return (synth(400, "PURGE needs an xkey-purge or xkey-softpurge header of space-separated tags"));
    }
    set req.http.X-SE-Purged = 0;
    if (req.http.xkey-purge) {
        set req.http.X-SE-Purged = xkey.purge(req.http.xkey-purge);
    }
    if (req.http.xkey-softpurge) {
        set req.http.X-SE-Purged = std.integer(req.http.X-SE-Purged, 0)
            + xkey.softpurge(req.http.xkey-softpurge);
    }
    return (synth(200, "Purged"));
}

sub vcl_hit {
    if (obj.ttl > 0s) {
        set req.http.X-SE-Cache = "HIT";
        return (deliver);
    }
    if (req.http.X-SE-Stale-If-Error) {
        # Second restart: the origin failed us; serve the stale copy (and refresh in background).
        set req.http.X-SE-Cache = "HIT-STALE-IF-ERROR";
        return (deliver);
    }
    if (obj.ttl + std.duration(obj.http.X-SE-SWR, obj.grace) >= 0s) {
        # Within stale-while-revalidate: serve now; Varnish starts one background fetch.
        set req.http.X-SE-Cache = "HIT-STALE";
        return (deliver);
    }
    if (!std.healthy(req.backend_hint)) {
        # Past stale-while-revalidate, within stale-if-error, and the probe says the origin is
        # sick: serve stale rather than wait for a fetch that cannot succeed.
        set req.http.X-SE-Cache = "HIT-STALE-IF-ERROR";
        return (deliver);
    }
    # Past stale-while-revalidate with a healthy origin: fetch synchronously (see vcl_recv).
    set req.http.X-SE-Grace-Cap = obj.http.X-SE-SWR;
    return (restart);
}

sub vcl_miss {
    set req.http.X-SE-Cache = "MISS";
}

sub vcl_pass {
    set req.http.X-SE-Cache = "PASS";
}

sub vcl_deliver {
    set resp.http.X-Cache = req.http.X-SE-Cache;
    # Surrogate-Control and xkey are meant for this cache only; X-SE-* are internal.
    # Cache-Tag / Surrogate-Key / CDN-Cache-Control stay for a CDN in front of Varnish.
    unset resp.http.Surrogate-Control;
    unset resp.http.xkey;
    unset resp.http.X-SE-SWR;
}

sub vcl_synth {
    if (req.method == "PURGE") {
        set resp.http.Content-Type = "text/plain; charset=utf-8";
        if (resp.status == 200) {
            set resp.http.X-Purged = req.http.X-SE-Purged;
            set resp.body = "purged " + req.http.X-SE-Purged + {"
"};
        } else {
            set resp.body = resp.reason + {"
"};
        }
        return (deliver);
    }
    if (resp.status == 503 && req.http.X-SE-Grace-Cap && !req.http.X-SE-Stale-If-Error) {
        # The fetch past stale-while-revalidate was abandoned (origin unreachable or 5xx, see
        # vcl_backend_error / vcl_backend_response): go back for the stale copy.
        unset req.http.X-SE-Grace-Cap;
        set req.http.X-SE-Stale-If-Error = "1";
        return (restart);
    }
    # Fall through to the built-in error page.
}

# ---------------------------------------------------------------------------------------------
# Backend side

sub vcl_backend_fetch {
    # Internal headers never reach the origin.
    unset bereq.http.X-SE-Grace-Cap;
    unset bereq.http.X-SE-Stale-If-Error;
    unset bereq.http.X-SE-Cache;
    unset bereq.http.X-SE-Purged;
}

sub vcl_backend_response {
    if (bereq.uncacheable) {
        # A pass: nothing to decide.
        return (deliver);
    }
    if (beresp.status >= 500) {
        if (bereq.is_bgfetch || bereq.http.If-None-Match || bereq.http.If-Modified-Since) {
            # A stale copy exists: this is its background refresh, or Varnish made the fetch
            # conditional on it (client conditionals never reach the origin on a miss).
            # Abandon, so the error never replaces it: even an uncacheable error object
            # would evict it. A foreground client then restarts for it from vcl_synth.
            return (abandon);
        }
        # No copy to protect: pass the origin's own error through, never cached.
        set beresp.ttl = 0s;
        set beresp.grace = 0s;
        set beresp.keep = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
    if (beresp.http.Set-Cookie
        || beresp.http.Cache-Control ~ "(?i)(^|[\s,])(private|no-store)([\s,=;]|$)"
        || beresp.http.Surrogate-Control ~ "(?i)(^|[\s,])no-store([\s,;]|$)"
        || (!beresp.http.Surrogate-Control
            && beresp.http.Cache-Control ~ "(?i)(^|[\s,])no-cache([\s,=;]|$)")
        || beresp.http.Vary == "*") {
        # Personal or explicitly uncacheable: remember that for 2 minutes (hit-for-miss), so
        # requests for it go straight to the origin instead of queueing behind each other.
        set beresp.ttl = 120s;
        set beresp.uncacheable = true;
        return (deliver);
    }
    call shelfedge_ttl;
    call shelfedge_stale_windows;
    if (beresp.ttl <= 0s && beresp.grace <= 0s) {
        set beresp.ttl = 120s;
        set beresp.uncacheable = true;
    }
    # Skip the built-in: it would ignore Cache-Control private once Surrogate-Control is set,
    # and would refuse objects that are stale from birth (max-age=0 with stale-while-revalidate).
    return (deliver);
}

sub shelfedge_ttl {
    # Surrogate-Control max-age wins (it targets this cache); otherwise keep the TTL Varnish
    # derived from Cache-Control s-maxage / max-age / Expires (already net of Age).
    if (beresp.http.Surrogate-Control ~ "(?i)(^|[\s,])max-age\s*=\s*[0-9]+") {
        set beresp.ttl = std.duration(
            regsub(beresp.http.Surrogate-Control,
                   "(?i)^(.*[\s,])?max-age\s*=\s*([0-9]+).*$", "\2s"),
            0s);
    }
}

sub shelfedge_stale_windows {
    # stale-while-revalidate: Surrogate-Control's, else what Varnish already derived (Cache-Control
    # stale-while-revalidate, else the default_grace parameter). Kept on the object as X-SE-SWR
    # for vcl_hit; removed at delivery.
    if (beresp.http.Surrogate-Control ~ "(?i)stale-while-revalidate\s*=\s*[0-9]+") {
        set beresp.grace = std.duration(
            regsub(beresp.http.Surrogate-Control,
                   "(?i)^.*stale-while-revalidate\s*=\s*([0-9]+).*$", "\1s"),
            0s);
    }
    set beresp.http.X-SE-SWR = beresp.grace + "s";
    # stale-if-error: Surrogate-Control's, else Cache-Control's, else none. The object stays
    # deliverable (grace) for the longer of the two windows, and revalidatable (keep) for
    # stale-if-error after that.
    unset beresp.http.X-SE-SIE;
    if (beresp.http.Surrogate-Control ~ "(?i)stale-if-error\s*=\s*[0-9]+") {
        set beresp.http.X-SE-SIE = regsub(beresp.http.Surrogate-Control,
            "(?i)^.*stale-if-error\s*=\s*([0-9]+).*$", "\1s");
    } elsif (beresp.http.Cache-Control ~ "(?i)stale-if-error\s*=\s*[0-9]+") {
        set beresp.http.X-SE-SIE = regsub(beresp.http.Cache-Control,
            "(?i)^.*stale-if-error\s*=\s*([0-9]+).*$", "\1s");
    }
    if (beresp.http.X-SE-SIE) {
        if (std.duration(beresp.http.X-SE-SIE, 0s) > beresp.grace) {
            set beresp.grace = std.duration(beresp.http.X-SE-SIE, 0s);
        }
        set beresp.keep = std.duration(beresp.http.X-SE-SIE, 0s);
        unset beresp.http.X-SE-SIE;
    }
}

sub vcl_backend_error {
    # The origin could not be reached (refused, timed out). Abandon rather than deliver the
    # built-in error object: an inserted error object, even with ttl 0, replaces the stale copy
    # we want to keep serving. The client then gets a 503 from vcl_synth, which restarts for
    # the stale copy when there is one; a background refresh simply leaves the stale copy be.
    return (abandon);
}

// Demo storefront glue: fill slots from the edge, keep demo cookies (consent, cart, recently viewed).
// Slot requests carry the page path (`page`, for experiments' path targeting) and the page's own
// `sx_*` parameters (preview links: `?sx_<experiment>=<variant>&sx_token=<token>`).
(function () {
  "use strict";
  const MAX_FORWARDED = 20;
  function slotQuery() {
    const query = new URLSearchParams();
    let forwarded = 0;
    new URLSearchParams(location.search).forEach(function (value, name) {
      if (name.indexOf("sx_") === 0 && forwarded < MAX_FORWARDED) {
        query.append(name, value);
        forwarded += 1;
      }
    });
    query.set("page", location.pathname);
    return query.toString();
  }
  function cookie(name) {
    const m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }
  function setCookie(name, value) {
    document.cookie = name + "=" + value + "; path=/; max-age=2592000; samesite=lax";
  }
  function cartItems() { return cookie("se_cart").split("|").filter(Boolean); }
  function renderCart() { document.getElementById("cart").textContent = "Cart: " + cartItems().length; }
  function track(type, el) {
    const body = JSON.stringify({ events: [{ type: type, slot: el.dataset.seSlot, sku: el.dataset.seSku,
      position: Number(el.dataset.sePos), variant: el.dataset.seVariant }] });
    if (navigator.sendBeacon) { navigator.sendBeacon("/se/events", new Blob([body], { type: "application/json" })); }
  }
  async function fill(host) {
    const slot = host.dataset.seSlot;
    try {
      const res = await fetch("/se/slot/" + encodeURIComponent(slot) + "?" + slotQuery(),
        { credentials: "same-origin" });
      host.innerHTML = await res.text();
      const meta = document.createElement("p");
      meta.className = "slot-meta";
      meta.textContent = "edge: " + (res.headers.get("X-Shelfedge-Cache") || "n/a") +
        " · variant: " + (res.headers.get("X-Shelfedge-Variant") || "n/a");
      host.appendChild(meta);
      host.querySelectorAll(".se-item").forEach(function (item) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = "Add to cart";
        button.addEventListener("click", function () {
          const items = cartItems().filter(function (s) { return s !== item.dataset.seSku; });
          items.unshift(item.dataset.seSku);
          setCookie("se_cart", items.slice(0, 20).join("|"));
          renderCart();
          track("add_to_cart", item);
        });
        item.querySelector(".se-card").appendChild(button);
        item.querySelector("a").addEventListener("click", function () { track("click", item); });
      });
    } catch (err) {
      host.innerHTML = "";
    }
  }
  const consent = document.getElementById("consent");
  consent.checked = cookie("se_consent") === "1";
  consent.addEventListener("change", function () {
    setCookie("se_consent", consent.checked ? "1" : "0");
    document.querySelectorAll("[data-se-slot].slot-host").forEach(fill);
  });
  const persona = new URLSearchParams(location.search).get("persona");
  document.querySelectorAll("[data-persona]").forEach(function (a) {
    if (a.dataset.persona === persona) { a.classList.add("active"); }
  });
  renderCart();
  document.querySelectorAll("[data-se-slot].slot-host").forEach(fill);
})();

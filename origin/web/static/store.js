// Demo storefront glue: beacons and the cart. Served through the edge, the page arrives with its
// slots in place (the edge composes them into the HTML stream); this script only wires their
// cards (add to cart, click beacons), keeps the demo cookies (consent, cart) and lists the cart.
// Behaviour beacons go to the edge's /se/events, which adds the visitor id (an HttpOnly cookie
// this script cannot read) and forwards them to the clickstream: a product page's view (sku,
// category, price), add to cart / remove from cart (sku, price), a placed order (purchase) and
// a search (its category). Each carries this tab's session id and the visit's utm_campaign.
// It fetches a slot from /se/slot only for the client-fetch version of a page (`?render=client`)
// or for a slot the edge left to the client (an `<se-slot data-se-fill>` marker: the slot missed
// its time budget at the edge). Slot requests carry the page path (`page`, for experiments' path
// targeting) and the page's `sx_*` parameters (preview links).
(function () {
  "use strict";
  const MAX_FORWARDED = 20;
  function slotQuery(anchor) {
    const query = new URLSearchParams();
    let forwarded = 0;
    new URLSearchParams(location.search).forEach(function (value, name) {
      if (name.indexOf("sx_") === 0 && forwarded < MAX_FORWARDED) {
        query.append(name, value);
        forwarded += 1;
      }
    });
    query.set("page", location.pathname);
    if (anchor) { query.set("sku", anchor); }  // an anchored slot's product
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
  function saveCart(items) { setCookie("se_cart", items.slice(0, 20).join("|")); renderCart(); }
  function addToCart(sku) {
    const items = cartItems().filter(function (s) { return s !== sku; });
    items.unshift(sku);
    saveCart(items);
  }
  function renderCart() {
    const items = cartItems();
    document.getElementById("cart").textContent = "Cart: " + items.length;
    const list = document.getElementById("cart-items");
    if (!list) { return; }
    list.textContent = "";
    items.forEach(function (sku) {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = "/products/" + encodeURIComponent(sku);
      link.textContent = sku;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.addEventListener("click", function () {
        saveCart(cartItems().filter(function (s) { return s !== sku; }));
        send([{ type: "remove_from_cart", sku: sku }]);
        location.reload();  // the edge recomposes the upsell for the new cart
      });
      li.append(link, " ", remove);
      list.appendChild(li);
    });
    document.getElementById("cart-empty").hidden = items.length > 0;
  }
  function session() {
    let id = sessionStorage.getItem("se_session");
    if (!id) {
      id = Array.from(crypto.getRandomValues(new Uint8Array(12)),
        function (b) { return b.toString(16).padStart(2, "0"); }).join("");
      sessionStorage.setItem("se_session", id);
    }
    return id;
  }
  const utm = new URLSearchParams(location.search).get("utm_campaign");
  if (utm && /^[a-z0-9_-]{1,64}$/.test(utm)) { sessionStorage.setItem("se_campaign", utm); }
  function send(events) {
    const campaign = sessionStorage.getItem("se_campaign");
    events.forEach(function (e) {
      e.session = session();
      if (campaign) { e.campaign = campaign; }
    });
    const body = JSON.stringify({ events: events });
    const blob = new Blob([body], { type: "application/json" });
    if (!(navigator.sendBeacon && navigator.sendBeacon("/se/events", blob))) {
      fetch("/se/events", { method: "POST", body: body, keepalive: true, credentials: "same-origin",
        headers: { "content-type": "application/json" } }).catch(function () {});
    }
  }
  function cardPrice(el) {  // "12.34 USD" / "12,34 €" on the card: minor units
    const text = (el.querySelector(".se-price:not(.se-price--was)") || {}).textContent || "";
    const number = text.replace(/[^\d.,]/g, "");
    const digits = Number(number.replace(/\D/g, ""));
    if (!number) { return undefined; }
    return /[.,]\d{2}$/.test(number) ? digits : digits * 100;
  }
  function track(type, el) {
    send([{ type: type, slot: el.dataset.seSlot, sku: el.dataset.seSku,
      position: Number(el.dataset.sePos), variant: el.dataset.seVariant, price_cents: cardPrice(el) }]);
  }
  function categoryOf(text) {
    return text.toLowerCase().trim().replace(/[^a-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64);
  }
  function wire(host) {
    host.querySelectorAll(".se-item").forEach(function (item) {
      if (item.dataset.seWired) { return; }
      item.dataset.seWired = "1";
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Add to cart";
      button.addEventListener("click", function () {
        addToCart(item.dataset.seSku);
        track("add_to_cart", item);
      });
      const card = item.querySelector(".se-card");
      if (card) { card.appendChild(button); }
      const link = item.querySelector("a");
      if (link) { link.addEventListener("click", function () { track("click", item); }); }
    });
  }
  async function fill(host, slot, anchor) {
    try {
      const res = await fetch("/se/slot/" + encodeURIComponent(slot) + "?" + slotQuery(anchor),
        { credentials: "same-origin" });
      host.innerHTML = await res.text();
      const meta = document.createElement("p");
      meta.className = "slot-meta";
      meta.textContent = "edge: " + (res.headers.get("X-Shelfedge-Cache") || "n/a") +
        " · variant: " + (res.headers.get("X-Shelfedge-Variant") || "n/a");
      host.appendChild(meta);
      wire(host);
    } catch (err) {
      host.innerHTML = "";
    }
  }
  function fillClientSlots() {
    document.querySelectorAll(".slot-host[data-se-slot]:not([data-se-composed])").forEach(function (host) {
      fill(host, host.dataset.seSlot, host.dataset.seAnchor);
    });
    document.querySelectorAll("se-slot[data-se-fill]").forEach(function (marker) {
      fill(marker, marker.getAttribute("name"), marker.getAttribute("anchor"));
    });
  }
  const consent = document.getElementById("consent");
  consent.checked = cookie("se_consent") === "1";
  consent.addEventListener("change", function () {
    setCookie("se_consent", consent.checked ? "1" : "0");
    if (document.body.dataset.render === "client") { fillClientSlots(); } else { location.reload(); }
  });
  const persona = new URLSearchParams(location.search).get("persona");
  document.querySelectorAll("[data-persona]").forEach(function (a) {
    if (a.dataset.persona === persona) { a.classList.add("active"); }
  });
  const product = document.querySelector(".product[data-sku]");
  if (product) {
    send([{ type: "view", sku: product.dataset.sku, category: product.dataset.category,
      price_cents: Number(product.dataset.priceCents) }]);
  }
  document.querySelectorAll(".product__add").forEach(function (button) {
    button.addEventListener("click", function () {
      addToCart(button.dataset.sku);
      const price = product ? Number(product.dataset.priceCents) : undefined;
      send([{ type: "add_to_cart", sku: button.dataset.sku, price_cents: price }]);
    });
  });
  const order = document.getElementById("place-order");
  if (order) {
    order.addEventListener("click", function () {
      if (!cartItems().length) { return; }
      send([{ type: "purchase" }]);
      saveCart([]);
      location.reload();
    });
  }
  const search = document.getElementById("search");
  search.addEventListener("submit", function (event) {
    event.preventDefault();
    const category = categoryOf(search.elements.q.value);
    if (category) { send([{ type: "search", category: category }]); }
    location.href = "/";
  });
  renderCart();
  document.querySelectorAll(".slot-host[data-se-composed]").forEach(wire);
  fillClientSlots();
})();

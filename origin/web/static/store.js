// Demo storefront glue: beacons and the cart. Served through the edge, the page arrives with its
// slots in place (the edge composes them into the HTML stream); this script only wires their
// cards (add to cart, click beacons), keeps the demo cookies (consent, cart) and lists the cart.
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
    if (anchor) { query.set("anchor", anchor); }
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
        location.reload();  // the edge recomposes the upsell for the new cart
      });
      li.append(link, " ", remove);
      list.appendChild(li);
    });
    document.getElementById("cart-empty").hidden = items.length > 0;
  }
  function track(type, el) {
    const body = JSON.stringify({ events: [{ type: type, slot: el.dataset.seSlot, sku: el.dataset.seSku,
      position: Number(el.dataset.sePos), variant: el.dataset.seVariant }] });
    if (navigator.sendBeacon) { navigator.sendBeacon("/se/events", new Blob([body], { type: "application/json" })); }
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
  document.querySelectorAll(".product__add").forEach(function (button) {
    button.addEventListener("click", function () { addToCart(button.dataset.sku); });
  });
  renderCart();
  document.querySelectorAll(".slot-host[data-se-composed]").forEach(wire);
  fillClientSlots();
})();

// Example only. The end-to-end test serves a generated /config.js with the
// address of the Tessera server it started and the client it registered.
window.SPA_CONFIG = {
  authority: "http://127.0.0.1:8080",
  client_id: "photo-sharing-spa",
  scope: "openid profile",
};

// Tessera's passkey forms (WebAuthn). A form marked data-webauthn="sign-in", "second-step",
// "register" or "enrol" asks Tessera for the ceremony's options (POST /webauthn/options, with the page's
// CSRF token), has the browser make or use a passkey, puts the answer in the form's hidden
// fields and submits it. The server checks everything; this file only carries bytes.
(function () {
  "use strict";

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeCredentials(list) {
    (list || []).forEach(function (c) {
      c.id = fromBase64url(c.id);
    });
  }

  function creationOptions(publicKey) {
    publicKey.challenge = fromBase64url(publicKey.challenge);
    publicKey.user.id = fromBase64url(publicKey.user.id);
    decodeCredentials(publicKey.excludeCredentials);
    return { publicKey: publicKey };
  }

  function requestOptions(publicKey) {
    publicKey.challenge = fromBase64url(publicKey.challenge);
    decodeCredentials(publicKey.allowCredentials);
    return { publicKey: publicKey };
  }

  function registration(credential) {
    var r = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: toBase64url(r.clientDataJSON),
        attestationObject: toBase64url(r.attestationObject),
        transports: typeof r.getTransports === "function" ? r.getTransports() : undefined
      },
      extensions: credential.getClientExtensionResults()
    };
  }

  function assertion(credential) {
    var r = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: toBase64url(r.clientDataJSON),
        authenticatorData: toBase64url(r.authenticatorData),
        signature: toBase64url(r.signature),
        userHandle: r.userHandle ? toBase64url(r.userHandle) : null
      },
      extensions: credential.getClientExtensionResults()
    };
  }

  function say(form, text) {
    var status = form.querySelector("[role=status]");
    if (status) {
      status.textContent = text;
    }
  }

  function begin(form) {
    var purpose = form.getAttribute("data-webauthn");
    var body = new URLSearchParams();
    body.set("csrf", form.elements.csrf.value);
    body.set("purpose", purpose);
    say(form, "Waiting for your passkey…");
    return fetch("/webauthn/options", { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (answer) {
          if (!response.ok) {
            throw new Error(answer.error || "The passkey could not be started.");
          }
          return answer;
        });
      })
      .then(function (answer) {
        form.elements.ceremony.value = answer.ceremony;
        var publicKey = answer.options.publicKey;
        if (purpose === "register" || purpose === "enrol") {
          return navigator.credentials.create(creationOptions(publicKey)).then(registration);
        }
        return navigator.credentials.get(requestOptions(publicKey)).then(assertion);
      })
      .then(function (credential) {
        form.elements.credential.value = JSON.stringify(credential);
        say(form, "");
        form.submit();
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var supported = typeof window.PublicKeyCredential === "function" && navigator.credentials;
    document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
      if (!supported) {
        if (!form.hidden) {
          say(form, "This browser cannot use passkeys.");
        }
        return;
      }
      form.hidden = false;
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        begin(form).catch(function (error) {
          var cancelled = error && error.name === "NotAllowedError";
          say(form, cancelled ? "The passkey was cancelled or timed out. Try again." : error.message);
        });
      });
    });
  });
})();

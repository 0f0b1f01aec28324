"""The patient's portal (``medledger portal``): a web page where a patient's own browser wallet
manages her consent and reads her audit trail, plus a page for researchers.

The server reads the chain and IPFS, serves the page's assets (bundled from npm packages at set-up),
and relays signed consent requests (checked before it pays gas, rate-limited per patient). It never
receives a private key, a passphrase or plaintext health data: signing happens in the wallet, and
key handling and decryption happen in the browser.

* :mod:`.backend` is the only module here that uses the rest of the library;
* :mod:`.relayer` checks and submits signed requests;
* :mod:`.app` is the web application (FastAPI); :mod:`.server` runs it.
"""

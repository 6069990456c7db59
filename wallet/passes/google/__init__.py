"""Google Wallet loyalty cards: class/object JSON, the "Save to Google Wallet" link, and a REST client.

Reference: /work/shared/reference/wallet-crm-vendors.md section 3 and
vendors-and-reliability.md section 3.2 (rotating barcodes).
"""

"""Apple Wallet store cards: the signed .pkpass, the PassKit web service and APNs update pushes."""

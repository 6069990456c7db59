-- The floor of a counter purchase: the one transaction POST /api/pos/v1/purchases/ commits, in plain
-- SQL through pgbench (no HTTP, no Python): idempotency claim, card lock, purchase, balance and tier
-- update, ledger entry, two outbox events, the stored result and the till's counter action. It keeps
-- invariant 2 (balance = sum of entries), so check_ledger stays clean after the floor has run.
-- Variables (pgbench -D): merchant, store, card_min, card_max (one id for the hot card), device_min,
-- device_max. A fixed amount of 12.34 earns 12 points times the card's tier multiplier.
\set card random(:card_min, :card_max)
\set device random(:device_min, :device_max)
\set amount 1234
BEGIN;
INSERT INTO wallet_idempotencyrecord (merchant_id, key, operation, fingerprint, result, created_at)
VALUES (:merchant, 'floor-' || gen_random_uuid(), 'record_purchase', md5(random()::text), '{}', now())
RETURNING id AS claim \gset
SELECT floor(:amount / 100.0 * p.points_per_currency_unit * COALESCE(t.multiplier, 1))::bigint AS points,
       COALESCE(t.multiplier, 1) AS multiplier, w.customer_id AS customer, c.program_id AS program, c.status
FROM wallet_card c
JOIN merchants_program p ON p.id = c.program_id
JOIN merchants_merchant m ON m.id = c.merchant_id
JOIN wallet_wallet w ON w.id = c.wallet_id
LEFT JOIN merchants_tier t ON t.id = c.tier_id
WHERE c.id = :card FOR UPDATE OF c \gset
INSERT INTO wallet_purchase (merchant_id, store_id, card_id, external_id, amount, currency, items, status,
    refunded_amount, points_earned, points_reversed, occurred_at, created_at, receipt_code)
SELECT :merchant, :store, :card, 'floor-' || gen_random_uuid(), :amount, m.currency, '[]', 'completed', 0,
       :points, 0, now(), now(), ''
FROM merchants_merchant m WHERE m.id = :merchant
RETURNING id AS purchase \gset
UPDATE wallet_card SET balance = balance + :points, lifetime_points = lifetime_points + :points,
    tier_id = COALESCE((SELECT id FROM merchants_tier WHERE program_id = :program
                        AND threshold <= wallet_card.lifetime_points + :points
                        ORDER BY threshold DESC LIMIT 1), tier_id),
    pass_updated_at = now()
WHERE id = :card
RETURNING balance, lifetime_points AS lifetime \gset
INSERT INTO wallet_ledgerentry (merchant_id, card_id, kind, delta, balance_after, store_id, purchase_id,
    multiplier, reason, source, occurred_at, created_at, offer_title)
VALUES (:merchant, :card, 'earn', :points, :balance, :store, :purchase, :multiplier, '', 'pos', now(), now(), '')
RETURNING id AS entry \gset
INSERT INTO wallet_domainevent (merchant_id, customer_id, card_id, event_type, schema_version, payload,
    occurred_at, recorded_at)
VALUES (:merchant, :customer, :card, 'wallet.purchase.recorded', 1,
        jsonb_build_object('purchase_id', :purchase, 'store_id', :store, 'amount', :amount, 'points_earned', :points),
        now(), now()),
       (:merchant, :customer, :card, 'wallet.points.changed', 1,
        jsonb_build_object('entry_id', :entry, 'kind', 'earn', 'delta', :points, 'balance', :balance,
                           'lifetime_points', :lifetime),
        now(), now());
UPDATE wallet_idempotencyrecord
SET result = jsonb_build_object('purchase_id', :purchase, 'entry_id', :entry, 'points_earned', :points,
                                'balance', :balance)
WHERE id = :claim;
INSERT INTO pos_integration_counteraction (merchant_id, device_id, kind, card_id, purchase_id, ledger_entry_id,
    created_at)
VALUES (:merchant, :device, 'purchase', :card, :purchase, :entry, now());
END;

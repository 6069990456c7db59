-- The floor of a counter scan of a pass token (POST /api/pos/v1/scan/): the reads the answer needs,
-- in plain SQL through pgbench (no HTTP, no Python, no signature check): the signing key the token
-- names, the card with its program and merchant, the card summary (holder's first name, tier,
-- balance), then the rewards the balance pays for. Variables (pgbench -D): merchant, signing_key,
-- card_min, card_max.
\set card random(:card_min, :card_max)
SELECT id, merchant_id, public_key, status FROM wallet_passsigningkey WHERE id = :signing_key;
SELECT c.id, c.status, c.merchant_id, p.token_period_seconds, p.token_drift_steps, m.currency
FROM wallet_card c
JOIN merchants_program p ON p.id = c.program_id
JOIN merchants_merchant m ON m.id = c.merchant_id
WHERE c.id = :card;
SELECT c.number, u.first_name, c.status, t.name AS tier_name, c.balance, c.program_id AS program
FROM wallet_card c
JOIN wallet_wallet w ON w.id = c.wallet_id
JOIN wallet_customer cu ON cu.id = w.customer_id
JOIN core_user u ON u.id = cu.user_id
LEFT JOIN merchants_tier t ON t.id = c.tier_id
WHERE c.id = :card AND c.merchant_id = :merchant \gset
SELECT id, name, points_cost FROM merchants_reward
WHERE program_id = :program AND is_active AND points_cost <= GREATEST(:balance, 0) AND (stock IS NULL OR stock <> 0)
ORDER BY points_cost;

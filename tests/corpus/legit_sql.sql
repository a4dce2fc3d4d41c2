-- Legitimate analyst queries over the fund warehouse: every one must pass the guard and run.
-- One query per block: a "-- name:" line, a "-- covers:" line (vocabulary tags), the SQL.

-- name: total_invested_per_fund
-- covers: aggregates, join, group_by, order_by
SELECT f.fund_name, sum(i.amount_usd) AS invested_usd, count(*) AS deals
FROM investments i JOIN funds f ON f.fund_id = i.fund_id
GROUP BY f.fund_name ORDER BY invested_usd DESC;

-- name: databricks_invested_and_latest_value
-- covers: aggregates, cte, subquery, latest
WITH latest AS (
  SELECT fund_id, company_id, max(valuation_date) AS d FROM valuations GROUP BY ALL
)
SELECT c.company_name,
       (SELECT sum(amount_usd) FROM investments i WHERE i.company_id = c.company_id) AS invested,
       sum(v.fair_value_usd) AS fair_value
FROM companies c
JOIN valuations v ON v.company_id = c.company_id
JOIN latest l ON l.fund_id = v.fund_id AND l.company_id = v.company_id AND l.d = v.valuation_date
WHERE c.company_name = 'Databricks, Inc.'
GROUP BY c.company_id, c.company_name;

-- name: select_star_funds
-- covers: select_star
SELECT * FROM funds;

-- name: select_star_exclude
-- covers: select_star
SELECT * EXCLUDE (email) FROM general_partners ORDER BY gp_id;

-- name: qualified_star
-- covers: select_star, join
SELECT f.*, count(i.investment_id) AS deals
FROM funds f LEFT JOIN investments i USING (fund_id) GROUP BY ALL ORDER BY f.fund_id;

-- name: group_by_all_sector
-- covers: group_by_all, aggregates
SELECT sector, hq_country, count(*) AS companies FROM companies GROUP BY ALL ORDER BY ALL;

-- name: statistics_of_check_sizes
-- covers: statistics, aggregates
SELECT round_name, avg(amount_usd) AS mean, median(amount_usd) AS median,
       stddev_samp(amount_usd) AS sd, quantile_cont(amount_usd, 0.9) AS p90,
       min(amount_usd) AS smallest, max(amount_usd) AS largest
FROM investments GROUP BY round_name ORDER BY median DESC;

-- name: percentiles_and_mode
-- covers: statistics
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount_usd) AS p50,
       percentile_disc(0.75) WITHIN GROUP (ORDER BY amount_usd) AS p75,
       mode(round_name) AS most_common_round, approx_count_distinct(company_id) AS companies
FROM investments;

-- name: correlation_and_regression
-- covers: statistics
SELECT corr(amount_usd, ownership_pct) AS r, regr_slope(ownership_pct, amount_usd) AS slope,
       covar_samp(amount_usd, ownership_pct) AS cov, var_samp(amount_usd) AS var
FROM investments;

-- name: arg_max_biggest_deal_per_fund
-- covers: aggregates, statistics
SELECT fund_id, arg_max(company_id, amount_usd) AS biggest_company, max(amount_usd) AS biggest
FROM investments GROUP BY fund_id ORDER BY fund_id;

-- name: filtered_aggregates
-- covers: aggregates, conditional
SELECT fund_id,
       sum(amount_usd) FILTER (WHERE round_name = 'Seed') AS seed_usd,
       count(*) FILTER (WHERE round_name LIKE 'Series%') AS series_deals,
       count_if(amount_usd > 1000000) AS big_deals
FROM investments GROUP BY fund_id ORDER BY fund_id;

-- name: string_agg_of_companies
-- covers: aggregates, string
SELECT sector, string_agg(company_name, ', ' ORDER BY company_name) AS names
FROM companies WHERE founded_year >= 2018 GROUP BY sector ORDER BY sector;

-- name: list_and_bool_aggregates
-- covers: aggregates
SELECT fund_id, list(DISTINCT round_name ORDER BY round_name) AS rounds,
       bool_or(amount_usd > 5000000) AS any_big, any_value(lead_gp_id) AS some_gp
FROM investments GROUP BY fund_id ORDER BY fund_id;

-- name: row_number_qualify_latest_mark
-- covers: window, qualify, latest
SELECT fund_id, company_id, valuation_date, fair_value_usd
FROM valuations
QUALIFY row_number() OVER (PARTITION BY fund_id, company_id ORDER BY valuation_date DESC) = 1
ORDER BY fair_value_usd DESC LIMIT 10;

-- name: rank_companies_by_value
-- covers: window, qualify
SELECT c.company_name, v.fair_value_usd,
       rank() OVER (ORDER BY v.fair_value_usd DESC) AS rnk,
       dense_rank() OVER (ORDER BY v.fair_value_usd DESC) AS drnk,
       percent_rank() OVER (ORDER BY v.fair_value_usd) AS pct
FROM valuations v JOIN companies c USING (company_id)
WHERE v.valuation_date = (SELECT max(valuation_date) FROM valuations)
QUALIFY rnk <= 10;

-- name: lag_lead_quarter_change
-- covers: window
SELECT fund_id, company_id, valuation_date, fair_value_usd,
       fair_value_usd - lag(fair_value_usd) OVER w AS change_qoq,
       lead(valuation_date) OVER w AS next_mark
FROM valuations WHERE company_id = 2
WINDOW w AS (PARTITION BY fund_id, company_id ORDER BY valuation_date)
ORDER BY fund_id, valuation_date;

-- name: running_total_and_moving_average
-- covers: window, date
SELECT date_trunc('quarter', investment_date) AS quarter, sum(amount_usd) AS invested,
       sum(sum(amount_usd)) OVER (ORDER BY date_trunc('quarter', investment_date)) AS cumulative,
       avg(sum(amount_usd)) OVER (ORDER BY date_trunc('quarter', investment_date)
                                  ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS moving_avg
FROM investments GROUP BY 1 ORDER BY 1;

-- name: ntile_first_last_value
-- covers: window
SELECT company_id, amount_usd, ntile(4) OVER (ORDER BY amount_usd) AS quartile,
       first_value(amount_usd) OVER (PARTITION BY company_id ORDER BY investment_date) AS first_check,
       last_value(amount_usd) OVER (PARTITION BY company_id ORDER BY investment_date
           ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_check,
       cume_dist() OVER (ORDER BY amount_usd) AS cd
FROM investments ORDER BY company_id, investment_date LIMIT 50;

-- name: investments_by_year_and_quarter
-- covers: date, group_by
SELECT year(investment_date) AS yr, quarter(investment_date) AS q, count(*) AS deals
FROM investments GROUP BY yr, q ORDER BY yr, q;

-- name: extract_and_date_part
-- covers: date
SELECT extract(year FROM exit_date) AS yr, date_part('month', exit_date) AS mon,
       monthname(exit_date) AS month_name, dayname(exit_date) AS day_name, count(*) AS exits
FROM exits GROUP BY ALL ORDER BY yr, mon;

-- name: holding_period_days
-- covers: date, join, cte
WITH first_in AS (
  SELECT fund_id, company_id, min(investment_date) AS first_date FROM investments GROUP BY ALL
)
SELECT e.exit_type, avg(date_diff('day', f.first_date, e.exit_date)) AS avg_days_held,
       avg(datediff('month', f.first_date, e.exit_date)) AS avg_months_held
FROM exits e JOIN first_in f USING (fund_id, company_id) GROUP BY e.exit_type ORDER BY 2;

-- name: date_arithmetic_last_twelve_months
-- covers: date
SELECT count(*) AS deals, sum(amount_usd) AS invested
FROM investments
WHERE investment_date > DATE '2026-09-30' - INTERVAL 12 MONTH
  AND investment_date <= date_add(DATE '2026-09-30', INTERVAL 1 DAY);

-- name: strftime_and_make_date
-- covers: date, string
SELECT strftime(valuation_date, '%Y-%m') AS label, make_date(year(valuation_date), 12, 31) AS ye,
       last_day(valuation_date) AS month_end, sum(fair_value_usd) AS nav
FROM valuations WHERE valuation_date >= DATE '2025-01-01' GROUP BY ALL ORDER BY month_end;

-- name: age_and_current_date
-- covers: date
SELECT full_name, start_date, date_diff('year', start_date, coalesce(end_date, current_date)) AS years,
       end_date IS NULL AS active
FROM general_partners ORDER BY years DESC;

-- name: date_trunc_month_series
-- covers: date, aggregates
SELECT date_trunc('month', exit_date) AS month, sum(proceeds_usd) AS proceeds
FROM exits WHERE exit_date BETWEEN DATE '2020-01-01' AND DATE '2024-12-31'
GROUP BY 1 ORDER BY 1;

-- name: strptime_and_cast
-- covers: date, conditional
SELECT CAST(strptime('2024-06-30', '%Y-%m-%d') AS DATE) AS d, try_cast('2024' AS INTEGER) AS y,
       '2024-03-31'::DATE AS q_end;

-- name: time_bucket_quarters
-- covers: date
SELECT time_bucket(INTERVAL 3 MONTH, investment_date) AS bucket, count(*) AS deals
FROM investments GROUP BY 1 ORDER BY 1 LIMIT 20;

-- name: ilike_company_search
-- covers: string
SELECT company_name, sector FROM companies
WHERE company_name ILIKE '%data%' OR lower(company_name) LIKE 'kaa%' ORDER BY company_name;

-- name: strip_legal_suffixes
-- covers: string
SELECT company_name,
       trim(regexp_replace(company_name, ',?\s+(Inc\.|LLC|Ltd\.|Corp\.|GmbH|SE)$', '')) AS short_name,
       split_part(company_name, ',', 1) AS before_comma, length(company_name) AS len
FROM companies ORDER BY len DESC LIMIT 20;

-- name: string_functions_mix
-- covers: string
SELECT upper(left(first_name, 1)) || lower(substr(last_name, 1, 3)) AS code,
       concat_ws(' ', first_name, last_name) AS name, replace(email, '@', ' at ') AS mail,
       starts_with(title, 'General') AS is_gp, contains(title, 'Partner') AS partner,
       lpad(CAST(gp_id AS VARCHAR), 4, '0') AS padded, reverse(last_name) AS rev,
       strpos(email, '@') AS at_pos, regexp_extract(email, '@(.+)$', 1) AS domain
FROM general_partners;

-- name: fuzzy_company_match
-- covers: similarity, string
SELECT company_name, jaro_winkler_similarity(lower(company_name), 'databricks') AS jw,
       levenshtein(lower(split_part(company_name, ',', 1)), 'databrick') AS lev,
       damerau_levenshtein(lower(company_name), 'databricks, inc.') AS dl,
       jaccard(lower(company_name), 'databricks') AS jac
FROM companies ORDER BY jw DESC LIMIT 5;

-- name: similarity_join_near_misses
-- covers: similarity, join
SELECT a.company_name AS a, b.company_name AS b, jaro_similarity(a.company_name, b.company_name) AS sim
FROM companies a JOIN companies b ON a.company_id < b.company_id
WHERE jaro_winkler_similarity(a.company_name, b.company_name) > 0.9
ORDER BY sim DESC LIMIT 20;

-- name: regexp_matches_filter
-- covers: string
SELECT count(*) AS llcs FROM companies WHERE regexp_matches(company_name, 'LLC$');

-- name: printf_and_format
-- covers: string
SELECT printf('%s (%d)', fund_name, vintage_year) AS label,
       format('{} vintage', vintage_year) AS vintage, round(committed_capital_usd / 1e6, 1) AS mm
FROM funds ORDER BY vintage_year;

-- name: union_of_cash_flows
-- covers: union, cte, aggregates
WITH flows AS (
  SELECT fund_id, investment_date AS d, -amount_usd AS usd, 'investment' AS kind FROM investments
  UNION ALL
  SELECT fund_id, exit_date, proceeds_usd, 'exit' FROM exits
)
SELECT fund_id, kind, sum(usd) AS total FROM flows GROUP BY ALL ORDER BY fund_id, kind;

-- name: union_distinct_names
-- covers: union
SELECT company_name AS name, 'company' AS kind FROM companies WHERE founded_year < 2006
UNION
SELECT full_name, 'partner' FROM general_partners
ORDER BY kind, name;

-- name: intersect_and_except
-- covers: union
SELECT company_id FROM investments WHERE fund_id = 1
INTERSECT
SELECT company_id FROM exits
EXCEPT
SELECT company_id FROM exits WHERE exit_type = 'Write-off';

-- name: multiple_ctes_moic
-- covers: cte, aggregates, conditional, latest
WITH invested AS (
  SELECT fund_id, sum(amount_usd) AS paid_in FROM investments GROUP BY fund_id
), latest AS (
  SELECT fund_id, sum(fair_value_usd) AS nav FROM valuations
  WHERE valuation_date = (SELECT max(valuation_date) FROM valuations) GROUP BY fund_id
), realized AS (
  SELECT fund_id, sum(proceeds_usd) AS distributions FROM exits GROUP BY fund_id
)
SELECT f.fund_name, i.paid_in, coalesce(l.nav, 0) AS nav, coalesce(r.distributions, 0) AS dist,
       round((coalesce(l.nav, 0) + coalesce(r.distributions, 0)) / nullif(i.paid_in, 0), 2) AS moic
FROM funds f JOIN invested i USING (fund_id) LEFT JOIN latest l USING (fund_id)
LEFT JOIN realized r USING (fund_id) ORDER BY moic DESC;

-- name: case_buckets
-- covers: conditional, aggregates
SELECT CASE WHEN amount_usd < 1000000 THEN 'under 1M'
            WHEN amount_usd < 10000000 THEN '1M-10M' ELSE '10M+' END AS bucket,
       count(*) AS deals, sum(amount_usd) AS usd
FROM investments GROUP BY 1 ORDER BY 1;

-- name: if_ifnull_greatest
-- covers: conditional
SELECT full_name, if(end_date IS NULL, 'active', 'left') AS state,
       ifnull(CAST(end_date AS VARCHAR), 'n/a') AS left_on,
       greatest(start_date, DATE '2015-01-01') AS counted_from,
       least(coalesce(end_date, DATE '2026-09-30'), DATE '2026-09-30') AS counted_to
FROM general_partners;

-- name: exists_and_in_subqueries
-- covers: subquery
SELECT company_name FROM companies c
WHERE EXISTS (SELECT 1 FROM exits e WHERE e.company_id = c.company_id AND e.exit_type = 'IPO')
  AND c.company_id IN (SELECT company_id FROM investments WHERE fund_id IN (1, 2))
ORDER BY company_name;

-- name: not_exists_unrealized
-- covers: subquery
SELECT count(*) AS unrealized FROM companies c
WHERE NOT EXISTS (SELECT 1 FROM exits e WHERE e.company_id = c.company_id);

-- name: correlated_scalar_subquery
-- covers: subquery, latest
SELECT c.company_name,
       (SELECT max(v.valuation_date) FROM valuations v WHERE v.company_id = c.company_id) AS last_mark
FROM companies c ORDER BY c.company_id LIMIT 25;

-- name: lateral_join_top_deal
-- covers: join, subquery
SELECT f.fund_name, top.company_id, top.amount_usd
FROM funds f, LATERAL (SELECT company_id, amount_usd FROM investments i
                       WHERE i.fund_id = f.fund_id ORDER BY amount_usd DESC LIMIT 1) top
ORDER BY f.fund_id;

-- name: gp_deal_counts_adam
-- covers: join, aggregates, string
SELECT gp.full_name, count(*) AS deals_led, sum(i.amount_usd) AS usd
FROM investments i JOIN general_partners gp ON gp.gp_id = i.lead_gp_id
WHERE gp.first_name = 'Adam' GROUP BY gp.full_name ORDER BY gp.full_name;

-- name: having_filter
-- covers: aggregates, group_by
SELECT company_id, count(DISTINCT fund_id) AS funds
FROM investments GROUP BY company_id HAVING count(DISTINCT fund_id) > 1 ORDER BY funds DESC;

-- name: math_functions
-- covers: math
SELECT fund_name, round(ln(committed_capital_usd), 3) AS ln_cap, floor(log10(committed_capital_usd)) AS mag,
       ceil(committed_capital_usd / 1e8) AS hundreds_mm, abs(vintage_year - 2020) AS dist,
       power(1.1, 3) AS compound, sqrt(vintage_year) AS rt, vintage_year % 4 AS m4,
       vintage_year // 10 AS decade_ish, sign(vintage_year - 2016) AS sgn
FROM funds;

-- name: irr_style_growth
-- covers: math, window
SELECT fund_id, valuation_date, sum(fair_value_usd) AS nav,
       round(sum(fair_value_usd) / nullif(lag(sum(fair_value_usd)) OVER (PARTITION BY fund_id
             ORDER BY valuation_date), 0) - 1, 4) AS qoq_growth
FROM valuations WHERE fund_id = 3 GROUP BY fund_id, valuation_date ORDER BY valuation_date;

-- name: distinct_on_latest
-- covers: latest
SELECT DISTINCT ON (fund_id, company_id) fund_id, company_id, valuation_date, fair_value_usd
FROM valuations ORDER BY fund_id, company_id, valuation_date DESC LIMIT 30;

-- name: order_limit_offset
-- covers: order_by
SELECT company_name FROM companies ORDER BY company_name LIMIT 10 OFFSET 20;

-- name: values_inline_lookup
-- covers: cte
WITH targets(name) AS (VALUES ('Databricks, Inc.'), ('Kaatix, Inc.'))
SELECT c.company_id, c.company_name FROM companies c JOIN targets t ON t.name = c.company_name;

-- name: array_and_struct_values
-- covers: conditional
SELECT [1, 2, 3] AS l, list_contains([2015, 2016], vintage_year) AS mid_vintage,
       {'fund': fund_name, 'year': vintage_year} AS s, array_length([1, 2]) AS n
FROM funds;

-- name: exits_by_type_share
-- covers: window, aggregates
SELECT exit_type, count(*) AS n, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM exits GROUP BY exit_type ORDER BY n DESC;

-- name: ownership_percent_format
-- covers: math, string
SELECT company_id, round(avg(ownership_pct), 2) AS avg_pct, printf('%.1f%%', avg(ownership_pct)) AS shown
FROM investments GROUP BY company_id ORDER BY avg_pct DESC LIMIT 10;

-- name: quoted_identifiers_and_aliases
-- covers: aggregates
SELECT "fund_name" AS "Fund", sum("committed_capital_usd") AS "Committed ($)"
FROM "funds" GROUP BY "fund_name" ORDER BY "Committed ($)" DESC;

-- name: deals_per_gp_window_share
-- covers: window, join
SELECT gp.full_name, count(*) AS deals,
       round(count(*) * 100.0 / sum(count(*)) OVER (), 2) AS share_pct
FROM investments i JOIN general_partners gp ON gp.gp_id = i.lead_gp_id
GROUP BY ALL ORDER BY deals DESC;

-- name: vintage_cohort_pivot_by_filter
-- covers: aggregates, conditional
SELECT f.vintage_year,
       sum(i.amount_usd) FILTER (WHERE i.round_name = 'Seed') AS seed,
       sum(i.amount_usd) FILTER (WHERE i.round_name = 'Series A') AS series_a,
       sum(CASE WHEN i.round_name NOT IN ('Seed', 'Series A') THEN i.amount_usd ELSE 0 END) AS later
FROM investments i JOIN funds f USING (fund_id) GROUP BY ALL ORDER BY 1;

-- name: geometric_and_product
-- covers: statistics
SELECT geomean(fair_value_usd) AS gmean, kurtosis(fair_value_usd) AS kurt,
       skewness(fair_value_usd) AS skew, entropy(fund_id) AS h
FROM valuations WHERE valuation_date = DATE '2026-09-30';

-- name: age_epoch_date_sub
-- covers: date
SELECT full_name, age(DATE '2026-09-30', start_date) AS tenure,
       epoch(start_date) AS start_epoch, date_sub('day', start_date, DATE '2026-09-30') AS days,
       dayofweek(start_date) AS dow, weekofyear(start_date) AS wk
FROM general_partners ORDER BY start_date;

-- name: string_split_and_array_to_string
-- covers: string
SELECT company_name, string_split(hq_city, ' ') AS words,
       array_to_string(string_split(hq_city, ' '), '-') AS slug, strip_accents(hq_city) AS plain
FROM companies ORDER BY company_id LIMIT 10;

-- name: nested_derived_tables
-- covers: subquery, aggregates
SELECT sector, avg(deals) AS avg_deals FROM (
  SELECT c.sector, c.company_id, count(*) AS deals
  FROM investments i JOIN companies c USING (company_id) GROUP BY ALL
) t GROUP BY sector ORDER BY avg_deals DESC;

-- name: trailing_semicolon_and_comments
-- covers: aggregates
/* total committed capital */
SELECT sum(committed_capital_usd) AS committed -- in USD
FROM funds;

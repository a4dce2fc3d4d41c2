"""54 extra documented tables a real fund warehouse grows into, for the prompt-growth benchmark.

Added to a copy of the sample warehouse they make 60 tables. They are written to be as hard
on schema pruning as a real catalogue: they share the core tables' vocabulary (fund_id,
company_id, amounts in USD, dates). Their documentation is terser than catalog.json's, so
`widen(..., dense_like=core_docs)` pads it to the core tables' density for the worst case.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

# TABLE name | description, then one line per column: name TYPE | documentation
SPEC = """
TABLE limited_partners | The fund's investors (LPs): pension funds, endowments, family offices and funds of funds. One row per LP entity; an LP can commit to several funds.
  lp_id INTEGER | Primary key of the limited partner. Referenced by lp_commitments, capital_call_allocations and distribution_allocations.
  lp_name VARCHAR | Legal name of the LP entity, e.g. 'Ontario Teachers Pension Plan'.
  lp_type VARCHAR | 'Pension', 'Endowment', 'Foundation', 'Family Office', 'Fund of Funds', 'Sovereign' or 'Corporate'.
  country VARCHAR | Country of the LP's domicile, full English name.
  first_commitment_date DATE | Date of the LP's first commitment to any of our funds.
  relationship_owner VARCHAR | Name of the partner who owns the LP relationship.
TABLE lp_commitments | Capital each limited partner committed to each fund. The sum over LPs of a fund equals funds.committed_capital_usd minus the GP commitment.
  commitment_id INTEGER | Primary key.
  lp_id INTEGER | The committing LP; references limited_partners.lp_id.
  fund_id INTEGER | The fund committed to; references funds.fund_id.
  commitment_usd DECIMAL(18,2) | Committed amount in US dollars (not millions).
  commitment_date DATE | Date the subscription documents were countersigned (the close the LP joined).
  close_number INTEGER | Which close of the fund the LP came in at: 1 = first close.
TABLE capital_calls | Drawdowns: each time a fund calls capital from its LPs to pay for investments, fees or expenses. One row per call notice.
  capital_call_id INTEGER | Primary key.
  fund_id INTEGER | The fund calling capital; references funds.fund_id.
  call_date DATE | Date of the call notice.
  due_date DATE | Date the LPs must wire the money by, usually 10 business days after call_date.
  amount_usd DECIMAL(18,2) | Total amount called from all LPs, US dollars.
  purpose VARCHAR | 'Investment', 'Management Fee', 'Fund Expenses' or 'Mixed'.
TABLE capital_call_allocations | Each LP's share of each capital call, pro rata to its commitment. Sum per call equals capital_calls.amount_usd.
  allocation_id BIGINT | Primary key.
  capital_call_id INTEGER | References capital_calls.capital_call_id.
  lp_id INTEGER | References limited_partners.lp_id.
  amount_usd DECIMAL(18,2) | The LP's share of the call, US dollars.
  paid_date DATE | Date the LP's wire arrived; NULL while unpaid. Late payers have paid_date after capital_calls.due_date.
TABLE distributions | Cash (or stock) a fund returned to its LPs, usually after an exit. One row per distribution event.
  distribution_id INTEGER | Primary key.
  fund_id INTEGER | The distributing fund; references funds.fund_id.
  distribution_date DATE | Date the distribution was paid.
  amount_usd DECIMAL(18,2) | Total distributed to all LPs, US dollars. For stock distributions, the value of the shares on the distribution date.
  kind VARCHAR | 'Cash' or 'In Kind' (shares of a listed company).
  exit_id INTEGER | The exit that funded it, references exits.exit_id; NULL for distributions of income.
TABLE distribution_allocations | Each LP's share of each distribution. Sum per distribution equals distributions.amount_usd.
  allocation_id BIGINT | Primary key.
  distribution_id INTEGER | References distributions.distribution_id.
  lp_id INTEGER | References limited_partners.lp_id.
  amount_usd DECIMAL(18,2) | The LP's share, US dollars.
  withholding_tax_usd DECIMAL(18,2) | Tax withheld from the LP's share, US dollars; zero for most LPs.
TABLE management_fees | Management fees charged by the management company to each fund, per quarter. Fees are charged on commitments during the investment period and on invested capital afterwards.
  fee_id INTEGER | Primary key.
  fund_id INTEGER | References funds.fund_id.
  quarter_end DATE | Last day of the quarter the fee covers.
  fee_basis_usd DECIMAL(18,2) | Amount the fee rate applies to: committed capital or net invested capital, US dollars.
  fee_rate_pct DECIMAL(5,3) | Annual fee rate in percent, e.g. 2.000.
  fee_usd DECIMAL(18,2) | Fee charged for the quarter, US dollars (fee_basis_usd x fee_rate_pct / 400, less offsets).
TABLE fund_expenses | Partnership expenses borne by a fund: legal, audit, fund administration, organisational costs. One row per invoice.
  expense_id INTEGER | Primary key.
  fund_id INTEGER | References funds.fund_id.
  expense_date DATE | Invoice date.
  category VARCHAR | 'Legal', 'Audit', 'Administration', 'Organisational', 'Broken Deal' or 'Other'.
  vendor VARCHAR | Name of the firm that invoiced.
  amount_usd DECIMAL(18,2) | Invoice amount, US dollars.
TABLE carried_interest | Carry accrued and paid to the general partner per fund and quarter, from the distribution waterfall.
  carry_id INTEGER | Primary key.
  fund_id INTEGER | References funds.fund_id.
  quarter_end DATE | Quarter the accrual is measured at.
  accrued_carry_usd DECIMAL(18,2) | Carry the GP would receive if the fund were liquidated at current marks, US dollars.
  paid_carry_usd DECIMAL(18,2) | Carry actually paid out in the quarter, US dollars.
  clawback_reserve_usd DECIMAL(18,2) | Carry held back in escrow against a possible clawback.
TABLE waterfall_tiers | The distribution waterfall of each fund's partnership agreement, tier by tier (return of capital, preferred return, catch-up, carried interest split).
  fund_id INTEGER | References funds.fund_id.
  tier INTEGER | Order in the waterfall, 1 first.
  tier_name VARCHAR | 'Return of Capital', 'Preferred Return', 'GP Catch-up' or 'Carried Interest'.
  hurdle_pct DECIMAL(5,2) | Annual preferred return in percent for the preferred-return tier, else NULL.
  lp_split_pct DECIMAL(5,2) | Share of the tier's cash going to LPs, percent.
  gp_split_pct DECIMAL(5,2) | Share of the tier's cash going to the GP, percent.
TABLE fund_terms | Headline terms of each fund's limited partnership agreement.
  fund_id INTEGER | Primary key; references funds.fund_id.
  term_years INTEGER | Fund life in years from the final close, before extensions.
  extension_years INTEGER | Extensions the GP may take, in years.
  investment_period_years INTEGER | Years during which the fund may make new investments.
  carry_pct DECIMAL(5,2) | Carried interest percentage, usually 20 or 25.
  gp_commitment_pct DECIMAL(5,2) | The GP's own commitment as a percentage of fund size.
  final_close_date DATE | Date of the fund's final close.
TABLE side_letters | Special terms agreed with individual LPs: fee discounts, co-investment rights, reporting and excuse rights.
  side_letter_id INTEGER | Primary key.
  lp_id INTEGER | References limited_partners.lp_id.
  fund_id INTEGER | References funds.fund_id.
  provision VARCHAR | Kind of provision: 'Fee Discount', 'Co-invest Right', 'MFN', 'Excuse Right', 'Reporting'.
  details VARCHAR | Free text of the provision as negotiated.
  signed_date DATE | Date the side letter was signed.
TABLE gp_commitments | The general partners' personal commitments to the funds (skin in the game), per partner and fund.
  gp_id INTEGER | The partner; references general_partners.gp_id.
  fund_id INTEGER | References funds.fund_id.
  commitment_usd DECIMAL(18,2) | Personal commitment in US dollars.
  funded_usd DECIMAL(18,2) | Part of the commitment already called and paid, US dollars.
TABLE bank_accounts | Bank accounts held by the funds and the management company.
  account_id INTEGER | Primary key.
  owner_entity VARCHAR | Legal entity owning the account (a fund or the management company).
  fund_id INTEGER | The fund owning the account; NULL for management-company accounts.
  bank_name VARCHAR | Name of the bank.
  currency VARCHAR | ISO currency code of the account, e.g. 'USD', 'EUR'.
  purpose VARCHAR | 'Operating', 'Capital Calls', 'Distributions' or 'Escrow'.
TABLE wire_transfers | Money moved in and out of the bank accounts: LP wires, investment wires to companies, fee payments.
  wire_id BIGINT | Primary key.
  account_id INTEGER | References bank_accounts.account_id.
  wire_date DATE | Value date of the transfer.
  direction VARCHAR | 'In' or 'Out'.
  amount DECIMAL(18,2) | Amount in the account's currency.
  counterparty VARCHAR | Who sent or received the money.
  company_id INTEGER | Portfolio company paid, for investment wires; references companies.company_id.
TABLE fx_rates | Daily foreign-exchange rates used to convert non-USD investments and valuations to US dollars.
  rate_date DATE | Business day of the rate.
  currency VARCHAR | ISO currency code, e.g. 'EUR', 'GBP', 'INR'.
  usd_per_unit DOUBLE | US dollars for one unit of the currency at the day's close.
TABLE board_seats | Board seats and observer rights our partners hold at portfolio companies.
  board_seat_id INTEGER | Primary key.
  company_id INTEGER | References companies.company_id.
  gp_id INTEGER | The partner holding the seat; references general_partners.gp_id.
  role VARCHAR | 'Director', 'Observer' or 'Chair'.
  start_date DATE | Date the partner joined the board.
  end_date DATE | Date the partner left the board; NULL while serving.
TABLE board_meetings | Board meetings of portfolio companies attended by the firm, with the partner's notes.
  meeting_id INTEGER | Primary key.
  company_id INTEGER | References companies.company_id.
  meeting_date DATE | Date of the meeting.
  attended_by_gp_id INTEGER | The partner who attended; references general_partners.gp_id.
  summary VARCHAR | The partner's short notes from the meeting.
  follow_ups INTEGER | Number of action items the firm took away.
TABLE deal_pipeline | Companies the firm is looking at but has not (yet) invested in: sourced leads and active deals.
  deal_id INTEGER | Primary key.
  prospect_name VARCHAR | Name of the prospective company as sourced; not in companies until we invest.
  sector VARCHAR | Sector, same vocabulary as companies.sector.
  source VARCHAR | How the deal came in: 'Inbound', 'Referral', 'Outbound', 'Portfolio Founder'.
  owner_gp_id INTEGER | Partner leading the process; references general_partners.gp_id.
  stage VARCHAR | Current stage: 'Sourced', 'First Meeting', 'Diligence', 'IC', 'Term Sheet', 'Closed', 'Passed'.
  target_round VARCHAR | Round being raised, e.g. 'Series A'.
  first_contact_date DATE | Date of the first meeting.
TABLE ic_memos | Investment committee memos written for proposed investments, new and follow-on.
  memo_id INTEGER | Primary key.
  deal_id INTEGER | The pipeline deal, references deal_pipeline.deal_id; NULL for follow-ons.
  company_id INTEGER | The portfolio company for follow-on memos; references companies.company_id.
  author_gp_id INTEGER | References general_partners.gp_id.
  memo_date DATE | Date the memo was circulated.
  proposed_amount_usd DECIMAL(18,2) | Amount the memo asks the committee to approve, US dollars.
  thesis VARCHAR | One-paragraph investment thesis.
TABLE ic_decisions | Investment committee votes on memos.
  memo_id INTEGER | References ic_memos.memo_id.
  decision_date DATE | Date of the committee meeting.
  decision VARCHAR | 'Approved', 'Approved with Conditions', 'Declined' or 'Deferred'.
  approved_amount_usd DECIMAL(18,2) | Amount approved, US dollars; NULL when declined.
  votes_for INTEGER | Partners voting in favour.
  votes_against INTEGER | Partners voting against.
TABLE due_diligence_items | Diligence checklist items per pipeline deal and their status.
  item_id INTEGER | Primary key.
  deal_id INTEGER | References deal_pipeline.deal_id.
  area VARCHAR | 'Legal', 'Financial', 'Technical', 'Commercial', 'Reference Calls' or 'Security'.
  status VARCHAR | 'Open', 'In Progress', 'Done' or 'Red Flag'.
  owner VARCHAR | Who does the work: a partner, an associate or an outside firm.
  due_date DATE | When the item must be done.
TABLE term_sheets | Term sheets offered or received, with the headline economics.
  term_sheet_id INTEGER | Primary key.
  deal_id INTEGER | References deal_pipeline.deal_id.
  issued_date DATE | Date the term sheet was sent.
  pre_money_usd DECIMAL(18,2) | Pre-money valuation offered, US dollars.
  investment_usd DECIMAL(18,2) | Amount we offered to invest, US dollars.
  liquidation_preference DECIMAL(4,2) | Liquidation preference multiple, e.g. 1.00.
  signed BOOLEAN | Whether the company signed it.
TABLE co_investors | Other investors in our portfolio companies' rounds: VC firms, corporates, angels.
  co_investor_id INTEGER | Primary key.
  name VARCHAR | Name of the firm or person.
  kind VARCHAR | 'VC', 'Growth Equity', 'Corporate', 'Angel', 'Sovereign' or 'Crossover'.
  hq_country VARCHAR | Country of the headquarters.
TABLE syndicate_participation | Which co-investors took part in which of our portfolio companies' financing rounds, and how much.
  company_id INTEGER | References companies.company_id.
  round_name VARCHAR | Round, same vocabulary as investments.round_name.
  co_investor_id INTEGER | References co_investors.co_investor_id.
  amount_usd DECIMAL(18,2) | Amount the co-investor put in, US dollars; NULL when undisclosed.
  led_round BOOLEAN | Whether the co-investor led the round.
TABLE share_classes | Share classes of each portfolio company (common, preferred series) with their rights.
  share_class_id INTEGER | Primary key.
  company_id INTEGER | References companies.company_id.
  class_name VARCHAR | e.g. 'Common', 'Series A Preferred'.
  original_issue_price DOUBLE | Price per share at issue, US dollars.
  liquidation_multiple DECIMAL(4,2) | Liquidation preference multiple of the class.
  participating BOOLEAN | Whether the preference participates after being paid.
TABLE cap_table_entries | Fully diluted capitalisation tables of portfolio companies: shares held per holder and class, as of each financing.
  entry_id BIGINT | Primary key.
  company_id INTEGER | References companies.company_id.
  share_class_id INTEGER | References share_classes.share_class_id.
  holder VARCHAR | Name of the holder: a fund, a founder, an employee pool, another investor.
  shares BIGINT | Number of shares.
  as_of_date DATE | Date of the cap table snapshot.
TABLE option_pools | Employee option pools of portfolio companies.
  company_id INTEGER | References companies.company_id.
  as_of_date DATE | Date of the snapshot.
  pool_shares BIGINT | Shares reserved for the pool.
  granted_shares BIGINT | Options granted so far.
  pool_pct DECIMAL(5,2) | Pool as a percentage of fully diluted shares.
TABLE convertible_notes | Convertible notes the funds hold in portfolio companies, before they convert into equity.
  note_id INTEGER | Primary key.
  fund_id INTEGER | References funds.fund_id.
  company_id INTEGER | References companies.company_id.
  principal_usd DECIMAL(18,2) | Principal lent, US dollars.
  interest_rate_pct DECIMAL(5,2) | Annual interest rate, percent.
  valuation_cap_usd DECIMAL(18,2) | Valuation cap for conversion, US dollars.
  issue_date DATE | Date the note was issued.
  converted_date DATE | Date the note converted into shares; NULL while outstanding.
TABLE safes | SAFEs (simple agreements for future equity) the funds hold, before conversion.
  safe_id INTEGER | Primary key.
  fund_id INTEGER | References funds.fund_id.
  company_id INTEGER | References companies.company_id.
  amount_usd DECIMAL(18,2) | Amount invested through the SAFE, US dollars.
  valuation_cap_usd DECIMAL(18,2) | Post-money valuation cap, US dollars.
  discount_pct DECIMAL(5,2) | Conversion discount, percent.
  signed_date DATE | Date signed.
TABLE warrants | Warrants the funds received alongside investments or venture debt.
  warrant_id INTEGER | Primary key.
  fund_id INTEGER | References funds.fund_id.
  company_id INTEGER | References companies.company_id.
  shares BIGINT | Shares the warrant gives the right to buy.
  strike_price DOUBLE | Exercise price per share, US dollars.
  expiry_date DATE | Last day the warrant can be exercised.
TABLE follow_on_reserves | Capital each fund keeps in reserve for follow-on investments in each portfolio company, as planned by the partners.
  fund_id INTEGER | References funds.fund_id.
  company_id INTEGER | References companies.company_id.
  reserved_usd DECIMAL(18,2) | Amount reserved, US dollars.
  deployed_usd DECIMAL(18,2) | Part of the reserve already invested, US dollars.
  updated_date DATE | Date of the last reserve review.
TABLE company_kpis | Monthly operating metrics reported by portfolio companies: revenue run rate, customers, churn, burn.
  company_id INTEGER | References companies.company_id.
  month DATE | First day of the month reported.
  arr_usd DECIMAL(18,2) | Annual recurring revenue at month end, US dollars.
  customers INTEGER | Paying customers at month end.
  net_revenue_retention_pct DECIMAL(6,2) | Net revenue retention over the last twelve months, percent.
  monthly_burn_usd DECIMAL(18,2) | Net cash burned in the month, US dollars (positive = burning).
TABLE company_financials | Quarterly financial statements of portfolio companies, as reported to the board.
  company_id INTEGER | References companies.company_id.
  quarter_end DATE | Last day of the quarter.
  revenue_usd DECIMAL(18,2) | Revenue recognised in the quarter, US dollars.
  gross_margin_pct DECIMAL(6,2) | Gross margin, percent.
  ebitda_usd DECIMAL(18,2) | EBITDA for the quarter, US dollars; negative for loss-making companies.
  audited BOOLEAN | Whether the figures come from audited accounts.
TABLE cash_runway | Cash and runway of each portfolio company at each month end.
  company_id INTEGER | References companies.company_id.
  month_end DATE | The month end.
  cash_usd DECIMAL(18,2) | Cash and equivalents, US dollars.
  runway_months DOUBLE | Months of runway at the current burn; NULL when cash-flow positive.
TABLE headcount_history | Employee headcount of portfolio companies over time.
  company_id INTEGER | References companies.company_id.
  as_of_date DATE | Date of the count.
  employees INTEGER | Full-time employees.
  engineers INTEGER | Of which in engineering.
TABLE founders | Founders of portfolio companies.
  founder_id INTEGER | Primary key.
  company_id INTEGER | References companies.company_id.
  full_name VARCHAR | The founder's name.
  role VARCHAR | Role at founding, e.g. 'CEO', 'CTO'.
  still_at_company BOOLEAN | Whether the founder still works at the company.
  prior_exit BOOLEAN | Whether the founder had sold or listed a company before.
TABLE key_hires | Executive hires at portfolio companies, many introduced by our talent team.
  hire_id INTEGER | Primary key.
  company_id INTEGER | References companies.company_id.
  title VARCHAR | Title of the hire, e.g. 'VP Sales'.
  hire_date DATE | Start date.
  introduced_by_firm BOOLEAN | Whether our talent team sourced the candidate.
TABLE portfolio_support_requests | Requests for help from portfolio companies to the platform team: recruiting, customer intros, fundraising advice.
  request_id INTEGER | Primary key.
  company_id INTEGER | References companies.company_id.
  opened_date DATE | Date the request came in.
  category VARCHAR | 'Recruiting', 'Customer Intro', 'Fundraising', 'Legal', 'Marketing' or 'Other'.
  status VARCHAR | 'Open', 'In Progress', 'Done' or 'Dropped'.
  handled_by VARCHAR | Platform team member handling it.
TABLE introductions | Introductions the firm made between portfolio companies and customers, partners or investors.
  intro_id INTEGER | Primary key.
  company_id INTEGER | References companies.company_id.
  intro_date DATE | Date of the introduction.
  counterparty VARCHAR | Who the company was introduced to.
  outcome VARCHAR | 'Meeting', 'Pilot', 'Customer', 'Investor' or 'No Result'.
  made_by_gp_id INTEGER | Partner who made it; references general_partners.gp_id.
TABLE lp_reports | Quarterly reports sent to the LPs of each fund, with the headline performance figures reported.
  report_id INTEGER | Primary key.
  fund_id INTEGER | References funds.fund_id.
  quarter_end DATE | Quarter reported.
  reported_nav_usd DECIMAL(18,2) | Net asset value reported, US dollars.
  reported_tvpi DOUBLE | Total value to paid-in multiple reported.
  reported_net_irr_pct DOUBLE | Net IRR reported, percent.
  sent_date DATE | Date the report went out.
TABLE valuation_methods | The methodology behind each quarterly mark of a holding (last round, comparables, DCF, write-down), as documented for the auditors.
  fund_id INTEGER | References funds.fund_id.
  company_id INTEGER | References companies.company_id.
  valuation_date DATE | Quarter end of the mark; joins to valuations on fund, company and date.
  method VARCHAR | 'Last Round', 'Comparables', 'DCF', 'Option Pricing Model', 'Write-down' or 'Exit Price'.
  discount_pct DECIMAL(5,2) | Discount applied for illiquidity or risk, percent.
  approved_by VARCHAR | Valuation committee member who signed off.
TABLE comparable_companies | Listed companies used as comparables for each portfolio company's valuation.
  company_id INTEGER | The portfolio company valued; references companies.company_id.
  ticker VARCHAR | Stock ticker of the listed comparable.
  comparable_name VARCHAR | Name of the listed company.
  ev_revenue_multiple DOUBLE | Enterprise value / next-twelve-months revenue at the valuation date.
  valuation_date DATE | Quarter end the comparable set was used for.
TABLE public_market_comps | Daily prices and multiples of listed comparable companies.
  ticker VARCHAR | Stock ticker.
  price_date DATE | Trading day.
  close_price DOUBLE | Closing price, in the listing currency.
  market_cap_usd DECIMAL(18,2) | Market capitalisation, US dollars.
  ev_revenue_multiple DOUBLE | Enterprise value over next-twelve-months revenue.
TABLE market_indices | Daily levels of public market indices used for public-market-equivalent (PME) comparisons.
  index_name VARCHAR | e.g. 'S&P 500', 'NASDAQ Composite', 'Russell 2000'.
  index_date DATE | Trading day.
  level DOUBLE | Closing level.
TABLE sectors | The sector taxonomy used in companies.sector, with its grouping into themes.
  sector VARCHAR | Sector name as used in companies.sector.
  theme VARCHAR | Broader theme, e.g. 'Enterprise', 'Consumer', 'Deep Tech', 'Health'.
  description VARCHAR | What belongs in the sector.
TABLE geographies | Countries and regions used in companies.hq_country, for regional breakdowns.
  country VARCHAR | Country name as used in companies.hq_country.
  region VARCHAR | 'North America', 'Europe', 'Asia', 'Latin America', 'Middle East & Africa'.
  iso_code VARCHAR | ISO 3166 alpha-2 code.
TABLE esg_scores | Annual ESG assessments of portfolio companies for the funds' sustainability reporting.
  company_id INTEGER | References companies.company_id.
  year INTEGER | Year assessed.
  environment_score INTEGER | 0-100.
  social_score INTEGER | 0-100.
  governance_score INTEGER | 0-100.
  assessor VARCHAR | Firm that did the assessment.
TABLE diversity_metrics | Diversity of portfolio companies' founders, leadership and boards, surveyed yearly.
  company_id INTEGER | References companies.company_id.
  year INTEGER | Survey year.
  women_founders INTEGER | Number of women among the founders.
  women_in_leadership_pct DECIMAL(5,2) | Share of the leadership team who are women, percent.
  board_independent_pct DECIMAL(5,2) | Share of independent directors, percent.
TABLE legal_entities | The legal entities of the firm: funds, parallel vehicles, feeder funds, the management company and the GP entities.
  entity_id INTEGER | Primary key.
  entity_name VARCHAR | Registered name, e.g. 'Northbeam Fund III, L.P.'.
  entity_type VARCHAR | 'Fund', 'Parallel Fund', 'Feeder', 'GP Entity' or 'Management Company'.
  fund_id INTEGER | The fund it belongs to; references funds.fund_id; NULL for the management company.
  jurisdiction VARCHAR | e.g. 'Delaware', 'Cayman Islands', 'Luxembourg'.
  formed_date DATE | Date of formation.
TABLE secondary_transactions | Stakes in portfolio companies or fund interests bought or sold on the secondary market.
  secondary_id INTEGER | Primary key.
  fund_id INTEGER | Our fund that bought or sold; references funds.fund_id.
  company_id INTEGER | The company whose shares changed hands; references companies.company_id.
  side VARCHAR | 'Buy' or 'Sell'.
  trade_date DATE | Date the trade settled.
  amount_usd DECIMAL(18,2) | Price paid or received, US dollars.
  discount_to_last_round_pct DECIMAL(6,2) | Price discount against the last primary round, percent.
TABLE news_mentions | Press coverage of portfolio companies found by the media monitor.
  mention_id BIGINT | Primary key.
  company_id INTEGER | References companies.company_id.
  published_date DATE | Publication date.
  outlet VARCHAR | Publication, e.g. 'TechCrunch'.
  headline VARCHAR | Headline of the article.
  sentiment VARCHAR | 'Positive', 'Neutral' or 'Negative', from the monitor's classifier.
TABLE web_traffic | Monthly website visits and app downloads of portfolio companies from a data vendor, for early signals between board meetings.
  company_id INTEGER | References companies.company_id.
  month DATE | First day of the month.
  visits BIGINT | Estimated website visits.
  app_downloads BIGINT | Estimated mobile app downloads; NULL for companies without an app.
TABLE audit_adjustments | Adjustments the auditors made to fund accounts at year end, including changes to valuations.
  adjustment_id INTEGER | Primary key.
  fund_id INTEGER | References funds.fund_id.
  fiscal_year INTEGER | Year audited.
  company_id INTEGER | The holding adjusted, references companies.company_id; NULL for fund-level items.
  amount_usd DECIMAL(18,2) | Effect on net assets, US dollars; negative lowers the NAV.
  reason VARCHAR | The auditor's explanation.
"""


def tables() -> list[dict[str, Any]]:
    """The spec as [{name, description, columns: [(name, type, doc)]}]."""
    out: list[dict[str, Any]] = []
    for line in SPEC.strip().splitlines():
        if line.startswith("TABLE "):
            name, desc = line[6:].split(" | ", 1)
            out.append({"name": name.strip(), "description": desc.strip(), "columns": []})
        else:
            head, doc = line.strip().split(" | ", 1)
            col, typ = head.split(" ", 1)
            out[-1]["columns"].append((col, typ, doc.strip()))
    return out


def _pad(text: str, size: int) -> str:
    """`text` repeated to about `size` characters: longer, but with no word it lacked."""
    out = text
    while len(out) < size:
        out += " " + text
    return out


def widen(sample: Path, target: Path, docs: dict[str, Any],
          dense_like: dict[str, Any] | None = None) -> dict[str, Any]:
    """Copy `sample` to `target` with the extra tables added; returns the widened docs.

    With `dense_like` (the core docs), each extra table's descriptions are padded to the core
    tables' average lengths by repeating their own words: pruning scores (sets of words) stay
    the same, while each table costs as many prompt characters as a core one.
    """
    import duckdb

    table_len = col_len = 0.0
    if dense_like:
        core = list(dense_like["tables"].values())
        table_len = sum(len(t["description"]) for t in core) / len(core)
        col_len = (sum(len(d) for t in core for d in t["columns"].values())
                   / sum(len(t["columns"]) for t in core))
    shutil.copyfile(sample, target)
    wide = copy.deepcopy(docs)
    con = duckdb.connect(str(target))
    try:
        for t in tables():
            cols = ", ".join(f"{c} {typ}" for c, typ, _ in t["columns"])
            con.execute(f"CREATE TABLE {t['name']} ({cols})")
            wide["tables"][t["name"]] = {
                "description": _pad(t["description"], int(table_len)),
                "columns": {c: _pad(d, int(col_len)) for c, _, d in t["columns"]}}
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return wide


def doc_chars(docs: dict[str, Any], names: list[str]) -> float:
    """Average documentation characters per table (description and column docs)."""
    sizes = [len(docs["tables"][n]["description"])
             + sum(len(d) for d in docs["tables"][n]["columns"].values()) for n in names]
    return sum(sizes) / len(sizes)

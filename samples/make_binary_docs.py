#!/usr/bin/env python3
"""Generate the PDF and DOCX documents of the Northwind Robotics sample handbook.

The text of every document lives in this script; running it (re)writes

    handbook/company/benefits-overview.pdf
    handbook/legal/export-control-robots.pdf
    handbook/company/travel-policy.docx
    handbook/hr/performance-review-process.docx
    handbook/executives/strategy-2027.docx

next to this file. Output is deterministic: reportlab runs in invariant mode
(fixed creation date and document ID) and the DOCX core properties and zip
entry timestamps are pinned, so re-running produces identical bytes.

Requirements: reportlab and python-docx (both in the project's dev extra).

Usage:  python samples/make_binary_docs.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import zipfile
from pathlib import Path

# A document is a list of blocks:
#   ("h1", text) ("h2", text) ("p", text) ("ul", [items]) ("ol", [items])
#   ("table", [[header cells], [row cells], ...])
# Inline markup: only <b>...</b> is used (understood by both renderers).

FIXED_DATE = dt.datetime(2026, 6, 1, 9, 0, 0)
AUTHOR = "Northwind Robotics"

DOCS: dict[str, dict] = {}

# ---------------------------------------------------------------------------
DOCS["company/benefits-overview.pdf"] = {
    "title": "US Benefits Overview 2026",
    "blocks": [
        ("h1", "US Benefits Overview 2026"),
        (
            "p",
            "Northwind Robotics, Inc. | Owner: Lauren Pike, Benefits Manager, People team | "
            "Plan year January 1 - December 31, 2026. This overview summarizes the benefits "
            "available to regular US employees working 20 or more hours per week. The official "
            "plan documents control if anything here differs. Rotterdam employees receive a "
            "separate Dutch benefits guide.",
        ),
        ("h2", "Enrollment"),
        (
            "ul",
            [
                "New hires enroll in PeopleHub; coverage starts on the first day of employment.",
                "Annual open enrollment runs <b>November 2 - November 20, 2026</b> for the 2027 plan year.",
                "Mid-year changes are only possible within 31 days of a qualifying life event "
                "(marriage, birth, loss of other coverage, move).",
            ],
        ),
        ("h2", "Medical plans (Aetna)"),
        (
            "table",
            [
                ["Plan", "Deductible (individual / family)", "Out-of-pocket max", "Employee share of premium"],
                ["Aetna Choice PPO", "$750 / $1,500", "$3,500 / $7,000", "10% employee only, 25% dependents"],
                ["Aetna HSA Plan", "$1,700 / $3,400", "$4,000 / $8,000", "0% employee only, 15% dependents"],
            ],
        ),
        (
            "p",
            "Northwind contributes to the Health Savings Account of employees on the HSA Plan: "
            "<b>$1,000 per year for employee-only coverage and $2,000 per year for family "
            "coverage</b>, paid in equal amounts each pay period.",
        ),
        ("h2", "Dental and vision"),
        (
            "ul",
            [
                "Dental (Delta Dental PPO): preventive care covered at 100%, basic at 80%, major at 50%; "
                "annual maximum $2,500 per person; orthodontia lifetime maximum $2,000 for children and adults.",
                "Vision (VSP): eye exam every 12 months with $10 copay; $220 frame allowance; "
                "contact lens allowance $200.",
                "Northwind pays the full premium for employee-only dental and vision.",
            ],
        ),
        ("h2", "Retirement: 401(k) with Fidelity"),
        (
            "ul",
            [
                "Automatic enrollment at 5% of pay, which you can change or opt out of at any time.",
                "Company match: <b>100% of the first 4% of pay you contribute</b>, plus 50% of the next 2%.",
                "The match vests immediately.",
                "Roth and traditional contributions are both available.",
            ],
        ),
        ("h2", "Paid time off"),
        (
            "ul",
            [
                "PTO accrues each pay period: <b>18 days per year</b> in years 1-3, 22 days per year "
                "from year 4, and 26 days per year from year 8.",
                "Up to 5 unused PTO days carry over into the next year; the remainder is forfeited "
                "(except where state law requires payout).",
                "Sick time is separate: 10 days per year, available from day one.",
                "Company holidays and floating holidays are listed on the Holidays page.",
            ],
        ),
        ("h2", "Insurance and income protection"),
        (
            "ul",
            [
                "Basic life and AD&amp;D insurance: 2x annual base salary, up to $750,000, paid by Northwind.",
                "Short-term disability: 100% of base salary for the first 6 weeks, then 70% up to 26 weeks.",
                "Long-term disability: 60% of base salary up to $15,000 per month.",
            ],
        ),
        ("h2", "Wellbeing and development"),
        (
            "ul",
            [
                "Wellness allowance: <b>$65 per month</b> for gym, fitness classes, sports equipment or "
                "meditation apps, paid through payroll after you submit a claim in PeopleHub.",
                "Employee Assistance Program via Lyra Health: 12 free counseling sessions per person per year, "
                "also available to household members.",
                "Learning budget: $1,800 per employee per year for courses, conferences and books, approved "
                "by your manager.",
                "Employee stock purchase plan is not offered while Northwind is privately held.",
            ],
        ),
        ("h2", "Contacts"),
        (
            "p",
            "Questions: benefits@northwindrobotics.com. Aetna member services and the Fidelity "
            "NetBenefits site are linked from the Benefits tile in PeopleHub.",
        ),
    ],
}

# ---------------------------------------------------------------------------
DOCS["legal/export-control-robots.pdf"] = {
    "title": "Export Control Compliance for Robots, Software and Technology",
    "blocks": [
        ("h1", "Export Control Compliance for Robots, Software and Technology"),
        (
            "p",
            "Owner: Benjamin Hart, Export Compliance Officer (Legal). Version 2.3, approved by the "
            "General Counsel on January 20, 2026. Applies to all Northwind Robotics, Inc. and "
            "Northwind Robotics B.V. employees and contractors who ship, sell, service or develop "
            "our products.",
        ),
        ("h2", "Why this matters"),
        (
            "p",
            "Our robots, the Perch edge appliance and the Flock software contain encryption, "
            "lidar and motion-control technology. Exports are regulated in the US by the Export "
            "Administration Regulations (EAR) and in the EU by the Dual-Use Regulation (EU) "
            "2021/821. Violations can lead to fines of more than $350,000 per violation, loss of "
            "export privileges and criminal penalties for individuals.",
        ),
        ("h2", "Our product classifications"),
        (
            "table",
            [
                ["Item", "ECCN", "Notes"],
                [
                    "Tern mobile robot (all variants)",
                    "EAR99",
                    "No license needed except to embargoed destinations and restricted parties",
                ],
                ["Heron picking arm", "EAR99", "Safety controller firmware reviewed each major release"],
                ["Perch edge appliance", "5A992.c", "Mass-market encryption; classification request on file"],
                ["Flock software (cloud and edge)", "5D992.c", "Mass-market encryption software"],
                [
                    "Motion-planning and perception source code",
                    "5D992.c / EAR99",
                    "Source code releases to foreign persons require review",
                ],
            ],
        ),
        (
            "p",
            "Only the Export Compliance Officer may classify or re-classify a product. Engineering "
            "must notify Trade Compliance before any release that adds new encryption functions or new "
            "sensor hardware.",
        ),
        ("h2", "Restricted party screening"),
        (
            "ul",
            [
                "Every new customer, distributor, supplier, contractor and end user is screened in "
                "<b>Descartes Visual Compliance</b> before a quote, NDA or purchase order is issued.",
                "All existing business partners are re-screened automatically every night.",
                "A potential match puts the account on hold in the CRM until Trade Compliance clears it; "
                "target turnaround is 2 business days.",
            ],
        ),
        ("h2", "Prohibited and high-risk destinations"),
        (
            "ul",
            [
                "No sales, shipments, service, software updates or technical support to Cuba, Iran, "
                "North Korea, Syria, or the Crimea, Donetsk and Luhansk regions of Ukraine.",
                "No business with Russia or Belarus, including through third countries.",
                "China, Hong Kong, Venezuela and Myanmar: every transaction requires written pre-approval "
                "from the Export Compliance Officer and an end-use statement signed by the customer.",
                "Military end users and end uses are prohibited without Legal approval in every country.",
            ],
        ),
        ("h2", "Deemed exports and foreign nationals"),
        (
            "p",
            "Sharing controlled technology or source code with a foreign person inside the US counts "
            "as an export to that person's country. Before a foreign national employee, intern or "
            "visitor gets access to the Reno engineering lab, the nwos source repositories or "
            "technical drawings, the hiring manager submits a <b>Technology Access Request</b>, which "
            "Trade Compliance reviews within 5 business days. Visitors from the high-risk list above "
            "may not enter engineering areas.",
        ),
        ("h2", "Travelling with laptops and demo units"),
        (
            "ul",
            [
                "Company laptops with source code may be hand-carried abroad under the EAR 'TMP' license "
                "exception for up to 12 months, except to the prohibited destinations above.",
                "Demo robots and Perch appliances shipped to trade shows outside the US need a carnet and "
                "a shipment review by Trade Compliance at least 15 business days before shipping.",
            ],
        ),
        ("h2", "Red flags"),
        (
            "ul",
            [
                "The customer is reluctant to say where the robots will be used, or the site is unknown.",
                "Payment from a third party or a country unrelated to the customer.",
                "Requests to remove serial numbers, disable geolocation or modify safety functions for "
                "'special applications'.",
                "Unusual shipping routes through free-trade zones or freight forwarders as end consignee.",
            ],
        ),
        (
            "p",
            "If you see a red flag, stop the transaction and email export@northwindrobotics.com. "
            "Do not tell the customer why the deal is paused.",
        ),
        ("h2", "Records and training"),
        (
            "p",
            "Export records (screening results, classifications, shipping documents, licenses) are "
            "kept for <b>5 years</b> from the date of export. Engineering, sales, field service and "
            "logistics staff complete the Export Control Basics course within 30 days of joining and "
            "an advanced refresher every 2 years. Potential violations are reported to the Export "
            "Compliance Officer immediately; the company decides on any voluntary self-disclosure to "
            "the Bureau of Industry and Security.",
        ),
    ],
}

# ---------------------------------------------------------------------------
DOCS["company/travel-policy.docx"] = {
    "title": "Business Travel Policy",
    "blocks": [
        ("h1", "Business Travel Policy"),
        (
            "p",
            "Applies to all employees and contractors traveling on Northwind business, including "
            "customer site visits, installations, trade shows and trips between our offices. "
            "Owner: Finance (Travel program manager: Bridget Sullivan). Effective February 1, 2026.",
        ),
        ("h2", "Before you book"),
        (
            "ul",
            [
                "Domestic trips need your manager's approval in Navan before booking.",
                "International trips need approval from your department head and must be booked at "
                "least 21 days in advance. Engineers and field service staff traveling abroad with "
                "company laptops also need the export control check described in the legal policy.",
                "Ask yourself whether a video call would do. Trips for internal meetings only are "
                "limited to 2 per quarter per person unless your department head agrees.",
            ],
        ),
        ("h2", "Booking tool"),
        (
            "p",
            "All flights, hotels and rental cars are booked in <b>Navan</b> (formerly TripActions). "
            "Bookings made outside Navan are not reimbursed unless Navan could not offer the option "
            "and the price was lower. Navan's 24/7 agent line can rebook you during disruptions.",
        ),
        ("h2", "Flights"),
        (
            "ul",
            [
                "Economy class for flights up to 6 hours of scheduled flying time.",
                "Premium economy for flights longer than 6 hours.",
                "Business class only for overnight flights longer than 9 hours, and only with VP approval.",
                "Book at least 14 days ahead for domestic flights when possible.",
                "One checked bag is reimbursed; field service engineers may check tool cases as well.",
            ],
        ),
        ("h2", "Hotels"),
        ("p", "Nightly hotel caps (before taxes):"),
        (
            "table",
            [
                ["Location", "Nightly cap"],
                ["Boston / Somerville", "$310"],
                ["Pittsburgh", "$185"],
                ["Reno", "$155"],
                ["New York, San Francisco, Seattle", "$340"],
                ["Other US cities", "$225"],
                ["Rotterdam and other EU cities", "EUR 205"],
            ],
        ),
        (
            "p",
            "Navan shows in-policy hotels first. If a customer site is far from in-policy hotels, "
            "your manager can approve an exception in Navan before booking.",
        ),
        ("h2", "Meals and per diem"),
        (
            "ul",
            [
                "US travel: a meal per diem of <b>$70 per full travel day</b> (75% on the first and last "
                "day). No receipts are needed for the per diem.",
                "EU travel: EUR 62 per full travel day.",
                "Meals with customers are claimed as customer meals under Expense Basics instead of the "
                "per diem for that meal.",
            ],
        ),
        ("h2", "Ground transport"),
        (
            "ul",
            [
                "Rideshare and taxis for airport transfers and customer visits.",
                "Rental cars: mid-size or smaller; decline the rental company's insurance in the US, "
                "because Northwind's policy covers it. Always refuel before returning.",
                "Personal car: mileage reimbursed at the IRS standard rate (70 cents per mile in 2026) "
                "for trips beyond your normal commute.",
            ],
        ),
        ("h2", "Safety on customer sites"),
        (
            "p",
            "Bring your own safety shoes and high-visibility vest to warehouse visits. Follow the "
            "customer's site rules and never ride on or interfere with robots in operation. Report "
            "any incident to the Robotics Safety Office the same day.",
        ),
        ("h2", "Travel risk"),
        (
            "p",
            "Trips to countries rated level 3 or higher by the US State Department need CISO and "
            "General Counsel approval. Northwind's travel assistance provider is International SOS "
            "(membership number 11BCAS000721); save the app before you leave.",
        ),
        ("h2", "After the trip"),
        (
            "p",
            "Reconcile your Navan and card transactions in Ledgerline within 10 days of returning. "
            "Unused non-refundable tickets stay as credits in Navan and must be used for your next "
            "business trip.",
        ),
    ],
}

# ---------------------------------------------------------------------------
DOCS["hr/performance-review-process.docx"] = {
    "title": "Performance Review Process",
    "blocks": [
        ("h1", "Performance Review Process"),
        (
            "p",
            "Owner: People Partners team (lead: Naomi Achterberg). Applies to all regular employees "
            "who joined before October 1 of the review year. This document describes the 2025 "
            "annual review, run in early 2026, and the mid-year check-in.",
        ),
        ("h2", "Principles"),
        (
            "ul",
            [
                "Feedback happens all year; the annual review should contain no surprises.",
                "We assess both what you achieved (results against goals) and how (our values: "
                "Safety First, Own the Outcome, Build Together, Keep It Simple).",
                "Ratings are calibrated across teams so the same performance gets the same rating.",
            ],
        ),
        ("h2", "Timeline"),
        (
            "table",
            [
                ["Step", "Dates", "Who"],
                ["Self-review opens in Lattice", "January 5", "All employees"],
                ["Self-review due", "January 23", "All employees"],
                ["Peer feedback (3 to 5 peers chosen with your manager)", "January 12 - January 30", "Peers"],
                ["Manager review and proposed rating due", "February 6", "Managers"],
                ["Calibration sessions", "February 9 - February 20", "Managers, department heads, People Partners"],
                ["Review conversations", "March 2 - March 20", "Managers and employees"],
                ["Mid-year check-in (no rating)", "July 6 - July 24", "Managers and employees"],
            ],
        ),
        ("h2", "Rating scale"),
        (
            "table",
            [
                ["Rating", "Meaning", "Guideline share", "Bonus multiplier"],
                ["5 - Exceptional", "Far exceeded expectations; role model", "about 8%", "1.5x"],
                ["4 - Exceeds", "Consistently above expectations", "about 25%", "1.25x"],
                ["3 - Meets", "Solid, fully successful performance", "about 55%", "1.0x"],
                ["2 - Partially meets", "Some expectations not met", "about 10%", "0.5x"],
                ["1 - Does not meet", "Significant gaps", "about 2%", "0x"],
            ],
        ),
        (
            "p",
            "The guideline shares are targets for departments of more than 30 people, not quotas. "
            "A rating of 2 or 1 must be discussed with a People Partner before the conversation.",
        ),
        ("h2", "Calibration"),
        (
            "p",
            "Each department holds calibration sessions of at most 2 hours per 40 employees. Managers "
            "present each proposed rating with 2-3 pieces of evidence. People Partners facilitate and "
            "watch for bias, for example recency bias or penalizing people who were on leave.",
        ),
        ("h2", "Bonus"),
        (
            "p",
            "Annual bonus targets are <b>8% of base salary for individual contributors up to level 3</b>, "
            "12% for level 4 and above and managers, and 20% for directors. The payout is the target "
            "multiplied by the company funding factor (set by the board; 0.9 for 2025) and the "
            "individual multiplier above. Bonuses are paid with the March 31 payroll.",
        ),
        ("h2", "Promotions"),
        (
            "ul",
            [
                "Promotion nominations are reviewed twice a year: in the annual cycle and in September.",
                "The manager writes a promotion case showing at least 6 months of sustained performance at "
                "the next level.",
                "Promotions to Staff/Principal (E4/E5) and to Director are approved by a cross-functional "
                "committee chaired by the CTO or the relevant executive.",
            ],
        ),
        ("h2", "The review conversation"),
        (
            "ul",
            [
                "Book 45 minutes and share the written review at least 24 hours before.",
                "Cover the rating, the bonus and any compensation change, and 2-3 development goals.",
                "The employee acknowledges the review in Lattice and may add comments within 14 days.",
            ],
        ),
        ("h2", "Disagreeing with your rating"),
        (
            "p",
            "Talk to your manager first. If that does not resolve it, ask your People Partner for a "
            "review by your skip-level manager within 30 days of the conversation.",
        ),
    ],
}

# ---------------------------------------------------------------------------
DOCS["executives/strategy-2027.docx"] = {
    "title": "Project Compass: 2027 Strategy",
    "blocks": [
        ("h1", "Project Compass: 2027 Strategy"),
        (
            "p",
            "Executive team draft v0.9 for the September 2026 board offsite. Author: Maggie Okafor, CEO, "
            "with the executive staff. Confidential: executives only.",
        ),
        ("h2", "Where we are"),
        (
            "p",
            "We expect to end 2026 with about 70 customer sites and close to 11,500 robots under "
            "Flock management. Customers love Tern's reliability, but hardware margins are thin, our "
            "picking product is late, and Europe is sub-scale. Competitors are starting to bundle "
            "fleet software for free with their robots.",
        ),
        ("h2", "2027 targets"),
        (
            "table",
            [
                ["Metric", "2026 (expected)", "2027 target"],
                ["Revenue", "$162M", "$228M"],
                ["Flock software ARR (year end)", "$49M", "$78M"],
                ["Customer sites live", "about 70", "115"],
                ["Robots under management", "about 11,500", "18,000"],
                ["Gross margin", "46%", "51%"],
                ["Operating margin (full year)", "negative", "+3%"],
                ["Employees (year end)", "about 430", "490"],
            ],
        ),
        ("h2", "Pillar 1: Flock becomes a platform"),
        (
            "ul",
            [
                "Launch <b>Flock Open</b> in Q1 2027: Flock coordinates third-party robots through the VDA 5050 "
                "interface standard.",
                "Target: 12 third-party robot models certified by year end, and 20% of new Flock ARR from "
                "sites that run at least one non-Northwind robot.",
                "Price Flock per managed robot instead of per site, with a platform fee.",
            ],
        ),
        ("h2", "Pillar 2: Win at picking"),
        (
            "ul",
            [
                "Ship Heron v3 to general availability by end of Q1 2027 after the November 2026 pilot.",
                "Close the vision gap through Project Lantern (acquisition) or, failing that, a doubled "
                "in-house perception team.",
                "Goal: Heron in 25 customer sites by end of 2027.",
            ],
        ),
        ("h2", "Pillar 3: A lighter, cheaper Tern"),
        (
            "p",
            "Launch <b>Tern Lite</b> in Q2 2027 at a list price of $29,500 (Tern today: $41,000), "
            "aimed at mid-size 3PLs. Contract manufacturing in Monterrey, Mexico, for Tern Lite; "
            "Reno keeps Tern and Heron final assembly.",
        ),
        ("h2", "Pillar 4: Europe through partners"),
        (
            "p",
            "Move Benelux and DACH to a distributor model and sign two new distributors for the Nordics "
            "and Iberia. EU revenue target: $21M in 2027, with a 3-person escalation team and EU-hosted "
            "Flock Cloud.",
        ),
        ("h2", "What we will stop doing"),
        (
            "ul",
            [
                "End new sales of Tern Classic (first-generation) after March 31, 2027; support continues until 2030.",
                "Exit the Japan pilot with our reseller after the current contract ends in June 2027.",
                "No custom robot variants for single customers below $3M contract value.",
            ],
        ),
        ("h2", "Funding"),
        (
            "p",
            "The plan needs about $45M of additional capital through 2028. Preferred path: the $25M "
            "venture debt facility in 2026 plus a Series D in H1 2027, sized to reach profitability "
            "without another round.",
        ),
        ("h2", "Key risks"),
        (
            "ul",
            [
                "Heron v3 slips again: mitigated by freezing scope in August 2026.",
                "Flock Open cannibalizes Tern hardware sales: we accept this trade for higher-margin software.",
                "Tariffs on components from Asia: dual sourcing of lidar from a second supplier by Q3 2027.",
            ],
        ),
        ("h2", "Decisions requested from the board"),
        (
            "ol",
            [
                "Endorse the four pillars and the 2027 targets above.",
                "Approve the Tern Lite contract manufacturing agreement (about $8M in the first year).",
                "Approve starting the Series D process in January 2027.",
            ],
        ),
    ],
}


# ---------------------------------------------------------------------------
# PDF rendering (reportlab)
# ---------------------------------------------------------------------------
def build_pdf(path: Path, doc: dict) -> None:
    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import LETTER
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import inch
    from reportlab.platypus import ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    rl_config.invariant = 1  # fixed creation date + document id -> reproducible bytes
    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=9, leading=11)
    story = []
    for kind, content in doc["blocks"]:
        if kind == "h1":
            story.append(Paragraph(content, styles["Title"]))
        elif kind == "h2":
            story.append(Paragraph(content, styles["Heading2"]))
        elif kind == "p":
            story.append(Paragraph(content, styles["BodyText"]))
        elif kind in ("ul", "ol"):
            items = [ListItem(Paragraph(t, styles["BodyText"])) for t in content]
            story.append(
                ListFlowable(
                    items,
                    bulletType="bullet" if kind == "ul" else "1",
                    start=None if kind == "ol" else "\u2022",
                    leftIndent=14,
                )
            )
        elif kind == "table":
            data = [[Paragraph(f"<b>{c}</b>" if i == 0 else c, cell) for c in row] for i, row in enumerate(content)]
            t = Table(
                data,
                repeatRows=1,
                hAlign="LEFT",
                colWidths=[(LETTER[0] - 2 * inch) / len(content[0])] * len(content[0]),
            )
            t.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde5f0")),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ]
                )
            )
            story.append(t)
            story.append(Spacer(1, 6))
        else:
            raise ValueError(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    SimpleDocTemplate(
        str(path),
        pagesize=LETTER,
        title=doc["title"],
        author=AUTHOR,
        subject="Northwind Robotics employee handbook (fictional sample corpus)",
        creator="samples/make_binary_docs.py",
        producer="reportlab",
        invariant=1,
        leftMargin=inch,
        rightMargin=inch,
        topMargin=inch,
        bottomMargin=inch,
    ).build(story)


# ---------------------------------------------------------------------------
# DOCX rendering (python-docx)
# ---------------------------------------------------------------------------
def _add_runs(paragraph, text: str) -> None:
    """Add text with <b>..</b> spans as bold runs; unescape &amp;."""
    parts = text.replace("&amp;", "&").split("<b>")
    paragraph.add_run(parts[0])
    for part in parts[1:]:
        bold, _, rest = part.partition("</b>")
        paragraph.add_run(bold).bold = True
        if rest:
            paragraph.add_run(rest)


def _deterministic_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed entry timestamps (python-docx stamps the current time)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE.timetuple()[:6])
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    return out.getvalue()


def build_docx(path: Path, doc: dict) -> None:
    import docx

    d = docx.Document()
    cp = d.core_properties
    cp.title = doc["title"]
    cp.author = AUTHOR
    cp.last_modified_by = AUTHOR
    cp.subject = "Northwind Robotics employee handbook (fictional sample corpus)"
    cp.comments = "Generated by samples/make_binary_docs.py"
    cp.created = FIXED_DATE
    cp.modified = FIXED_DATE
    cp.last_printed = FIXED_DATE
    cp.revision = 1
    for kind, content in doc["blocks"]:
        if kind == "h1":
            d.add_heading(content, level=1)
        elif kind == "h2":
            d.add_heading(content, level=2)
        elif kind == "p":
            _add_runs(d.add_paragraph(), content)
        elif kind in ("ul", "ol"):
            style = "List Bullet" if kind == "ul" else "List Number"
            for item in content:
                _add_runs(d.add_paragraph(style=style), item)
        elif kind == "table":
            t = d.add_table(rows=len(content), cols=len(content[0]))
            t.style = "Table Grid"
            for r, row in enumerate(content):
                for c, value in enumerate(row):
                    p = t.cell(r, c).paragraphs[0]
                    run = p.add_run(value)
                    run.bold = r == 0
            d.add_paragraph()
        else:
            raise ValueError(kind)
    buf = io.BytesIO()
    d.save(buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_deterministic_zip(buf.getvalue()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent / "handbook",
        help="corpus root to write into (default: samples/handbook next to this script)",
    )
    args = ap.parse_args()
    for rel, doc in DOCS.items():
        target = args.out_dir / rel
        if rel.endswith(".pdf"):
            build_pdf(target, doc)
        elif rel.endswith(".docx"):
            build_docx(target, doc)
        else:
            raise ValueError(rel)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()

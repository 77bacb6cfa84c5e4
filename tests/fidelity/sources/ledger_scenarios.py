META = {
    "env_id": "env_ledger",
    "env_class_name": "Ledger",
    "environment_summary": "A small bank ledger with slotted accounts",
    "environment_introduction": (
        "This environment is a bank ledger. Accounts hold a balance computed from cents, a status and their "
        "postings; staff deposit, transfer between accounts, freeze accounts and convert between EUR and USD "
        "at the ledger's rates."
    ),
    "constraints_rules": [
        "Frozen accounts take no postings.",
        "A transfer may not take the source account below zero.",
    ],
}

BASE = {
    "as_of": "2025-03-01",
    "book": [
        {"account_id": "A1", "owner": "Ana", "balance": 100.0},
        {"account_id": "B2", "owner": "Ben", "balance": 20.5},
        {"account_id": "C3", "owner": "Cy", "balance": 0.0},
    ],
}

SCENARIOS = [
    {
        "task_id": "1101-090000",
        "task": (
            "Ana wants to send Ben 40 dollars for the concert tickets, with the memo 'tickets'. Before that, "
            "convert 40 USD to EUR so I can tell her what it is in euros. Then freeze Cy's account, which "
            "was reported lost, and show me Ben's postings and his new balance afterwards."
        ),
        "checks": [
            ("Is Ana's balance 60.00 and Ben's 60.50, computed from their cents?", '''
def check_func(final_state):
    accounts = final_state["accounts"]
    return accounts["A1"].balance == 60.0 and accounts["B2"].balance == 60.5
'''),
            ("Did Ben get one posting of +4000 cents with memo 'tickets', dated 2025-03-01?", '''
def check_func(final_state):
    import datetime
    entries = final_state["accounts"]["B2"].entries
    return len(entries) == 1 and entries[0].amount_cents == 4000 and entries[0].memo == "tickets" \\
        and entries[0].day == datetime.date(2025, 3, 1)
'''),
            ("Is Cy's account frozen, and was it active at the start?", '''
def check_func(final_state):
    return final_state["accounts"]["C3"].status.value == "frozen" and \\
        initial_state["accounts"]["C3"].status.value == "active"
'''),
        ],
        "solution": [
            ("convert", {"amount": 40, "from_currency": "USD", "to_currency": "EUR"}),
            ("transfer", {"from_id": "A1", "to_id": "B2", "amount": 40, "memo": "tickets"}),
            ("freeze_account", {"account_id": "C3"}),
            ("deposit", {"account_id": "C3", "amount": 5}),
            ("list_entries", {"account_id": "B2"}),
            ("get_account", {"account_id": "B2"}),
        ],
    },
    {
        "task_id": "1101-101500",
        "task": (
            "Cy just got paid: deposit 250 euros into Cy's account, but the ledger is in dollars, so convert "
            "first and deposit the dollar amount with memo 'salary'. Then move 75 dollars from Cy to Ana "
            "for rent with memo 'rent', and confirm Cy's balance and the memos used so far today."
        ),
        "checks": [
            ("Is Cy's balance 237.50 after the salary and the rent?", '''
def check_func(final_state):
    return final_state["accounts"]["C3"].balance == 237.5
'''),
            ("Are the memos used exactly salary and rent?", '''
def check_func(final_state):
    return final_state["memos"] == {"salary", "rent"}
'''),
            ("Did the audit number grow past its start?", '''
def check_func(final_state):
    return final_state["audit"] > initial_state["audit"]
'''),
        ],
        "solution": [
            ("convert", {"amount": 250, "from_currency": "EUR", "to_currency": "USD"}),
            ("deposit", {"account_id": "C3", "amount": 312.5, "memo": "salary"}),
            ("transfer", {"from_id": "C3", "to_id": "A1", "amount": 75, "memo": "rent"}),
            ("transfer", {"from_id": "C3", "to_id": "A1", "amount": 1000, "memo": "rent"}),
            ("get_account", {"account_id": "C3"}),
        ],
    },
]

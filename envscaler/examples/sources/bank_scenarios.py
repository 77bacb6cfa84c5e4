META = {
    "env_id": "env_4",
    "env_class_name": "RetailBank",
    "environment_summary": "Retail bank accounts and payments",
    "environment_introduction": (
        "This environment is the core ledger of a small retail bank. It holds customers, their checking and "
        "savings accounts and every posted transaction. Tellers use it to look up balances, take deposits "
        "and withdrawals, move money between accounts and freeze accounts at risk."
    ),
    "constraints_rules": [
        "Withdrawals and outgoing transfers stay within the balance and the account's daily withdrawal limit.",
        "Frozen accounts take no deposits, withdrawals or transfers.",
        "Transfers need a KYC-verified source owner and accounts of the same currency.",
        "The daily withdrawal limit is between 100 and 10000.",
    ],
}

BASE = {
    "business_date": "2025-05-02",
    "customers": {
        "CU1": {"customer_id": "CU1", "name": "Sofia Marin", "kyc_verified": True},
        "CU2": {"customer_id": "CU2", "name": "Daniel Osei", "kyc_verified": True},
        "CU3": {"customer_id": "CU3", "name": "Ravi Menon", "kyc_verified": False},
    },
    "accounts": {
        "AC-100": {"account_id": "AC-100", "customer_id": "CU1", "kind": "checking", "balance": 1250.0,
                   "currency": "EUR", "frozen": False, "daily_withdrawal_limit": 1000.0},
        "AC-101": {"account_id": "AC-101", "customer_id": "CU1", "kind": "savings", "balance": 8400.0,
                   "currency": "EUR", "frozen": False, "daily_withdrawal_limit": 2000.0},
        "AC-200": {"account_id": "AC-200", "customer_id": "CU2", "kind": "checking", "balance": 310.55,
                   "currency": "EUR", "frozen": False, "daily_withdrawal_limit": 500.0},
        "AC-300": {"account_id": "AC-300", "customer_id": "CU3", "kind": "checking", "balance": 95.0,
                   "currency": "USD", "frozen": False, "daily_withdrawal_limit": 300.0},
    },
    "transactions": {
        "T00001": {"transaction_id": "T00001", "account_id": "AC-200", "amount": -400.0, "kind": "withdrawal",
                   "memo": "ATM", "date": "2025-05-02"},
    },
}

SCENARIOS = [
    {
        "task_id": "0502-091533",
        "task": (
            "I'm Sofia Marin. Please move 1500 euros from my savings into my checking account with the memo "
            "'rent May'. My landlord needs 2000 today, so after that, send 2000 from checking to Daniel "
            "Osei's checking account with the memo 'rent May' too."
        ),
        "checks": [
            ("Has AC-101 been debited 1500 (balance 6900)?", '''
def check_func(final_state):
    return abs(final_state["accounts"]["AC-101"]["balance"] - 6900.0) < 1e-6
'''),
            ("Has AC-200 received 2000 (balance 2310.55)?", '''
def check_func(final_state):
    return abs(final_state["accounts"]["AC-200"]["balance"] - 2310.55) < 1e-6
'''),
            ("Is there a transfer_out of -2000 from AC-100 with memo 'rent May'?", '''
def check_func(final_state):
    return any(t["account_id"] == "AC-100" and t["kind"] == "transfer_out" and t["amount"] == -2000.0
               and t["memo"] == "rent May" for t in final_state["transactions"].values())
'''),
        ],
        "solution": [
            ("find_customer", {"name": "Sofia"}),
            ("list_accounts", {"customer_id": "CU1"}),
            ("transfer", {"from_account_id": "AC-101", "to_account_id": "AC-100", "amount": 1500, "memo": "rent May"}),
            ("set_withdrawal_limit", {"account_id": "AC-100", "limit": 2500}),
            ("find_customer", {"name": "Daniel Osei"}),
            ("list_accounts", {"customer_id": "CU2"}),
            ("transfer", {"from_account_id": "AC-100", "to_account_id": "AC-200", "amount": 2000, "memo": "rent May"}),
        ],
    },
    {
        "task_id": "0502-113020",
        "task": (
            "Daniel Osei just called: his debit card for his checking account was stolen. Freeze that account "
            "right away with the reason 'card stolen'. He also wants to know his total balance across his "
            "accounts, and to lower the account's daily withdrawal limit to 200 for when it is unfrozen later."
        ),
        "checks": [
            ("Is AC-200 frozen?", '''
def check_func(final_state):
    return final_state["accounts"]["AC-200"]["frozen"] is True
'''),
            ("Is the daily withdrawal limit of AC-200 now 200?", '''
def check_func(final_state):
    return final_state["accounts"]["AC-200"]["daily_withdrawal_limit"] == 200.0
'''),
        ],
        "solution": [
            ("find_customer", {"name": "Daniel"}),
            ("list_accounts", {"customer_id": "CU2"}),
            ("freeze_account", {"account_id": "AC-200", "reason": "card stolen"}),
            ("summarize_customer", {"customer_id": "CU2"}),
            ("set_withdrawal_limit", {"account_id": "AC-200", "limit": 200}),
        ],
    },
    {
        "task_id": "0502-142201",
        "task": (
            "Ravi Menon is depositing 250 dollars in cash into his checking account (memo 'cash deposit'). "
            "Then he wants to withdraw 120 dollars in cash with the memo 'ATM'. Tell him his balance after "
            "both operations."
        ),
        "checks": [
            ("Is the balance of AC-300 now 225?", '''
def check_func(final_state):
    return abs(final_state["accounts"]["AC-300"]["balance"] - 225.0) < 1e-6
'''),
            ("Are there a 250 deposit and a -120 withdrawal on AC-300?", '''
def check_func(final_state):
    moves = sorted((t["kind"], t["amount"]) for t in final_state["transactions"].values()
                   if t["account_id"] == "AC-300")
    return moves == [("deposit", 250.0), ("withdrawal", -120.0)]
'''),
        ],
        "solution": [
            ("find_customer", {"name": "Ravi"}),
            ("list_accounts", {"customer_id": "CU3"}),
            ("deposit", {"account_id": "AC-300", "amount": 250, "memo": "cash deposit"}),
            ("withdraw", {"account_id": "AC-300", "amount": 120, "memo": "ATM"}),
            ("get_account", {"account_id": "AC-300"}),
        ],
    },
]

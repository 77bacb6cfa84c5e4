META = {
    "env_id": "env_1",
    "env_class_name": "LibrarySystem",
    "environment_summary": "Public library circulation desk",
    "environment_introduction": (
        "This environment is the circulation system of a public library branch. It tracks the catalogue, "
        "registered members, loans and holds. Staff use it to lend and take back books, renew loans, "
        "place holds on titles with no copy on the shelf and settle fines."
    ),
    "constraints_rules": [
        "Only active members who owe no fines and are under their loan limit may borrow.",
        "A loan lasts 1 to 28 days; a late return costs 0.25 per day.",
        "A loan can be renewed at most twice, and not while another member holds the title.",
        "A hold can only be placed on a title with no copy available.",
    ],
}

BASE = {
    "today": "2025-01-15",
    "books": {
        "B001": {"book_id": "B001", "title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin",
                 "genre": "science fiction", "total_copies": 2, "available_copies": 1},
        "B002": {"book_id": "B002", "title": "Dune", "author": "Frank Herbert", "genre": "science fiction",
                 "total_copies": 1, "available_copies": 0},
        "B003": {"book_id": "B003", "title": "Pride and Prejudice", "author": "Jane Austen", "genre": "classic",
                 "total_copies": 3, "available_copies": 3},
        "B004": {"book_id": "B004", "title": "Sapiens", "author": "Yuval Noah Harari", "genre": "history",
                 "total_copies": 1, "available_copies": 0},
    },
    "members": {
        "M001": {"member_id": "M001", "name": "Ana Ruiz", "status": "active", "fines_due": 0.0, "max_loans": 3},
        "M002": {"member_id": "M002", "name": "Ben Okafor", "status": "active", "fines_due": 1.5, "max_loans": 3},
        "M003": {"member_id": "M003", "name": "Chloe Martin", "status": "suspended", "fines_due": 0.0,
                 "max_loans": 2},
    },
    "loans": {
        "L001": {"loan_id": "L001", "book_id": "B001", "member_id": "M002", "due_date": "2025-01-10",
                 "renewals": 0, "returned": False},
        "L002": {"loan_id": "L002", "book_id": "B002", "member_id": "M001", "due_date": "2025-01-20",
                 "renewals": 2, "returned": False},
        "L003": {"loan_id": "L003", "book_id": "B004", "member_id": "M003", "due_date": "2025-01-25",
                 "renewals": 0, "returned": False},
    },
    "holds": {},
}

SCENARIOS = [
    {
        "task_id": "0115-091204",
        "task": (
            "Hi, this is Ana Ruiz. I'd like to borrow Pride and Prejudice, and since I'm travelling I need it "
            "for three weeks (21 days). I also want Sapiens, but I think someone has it at the moment, so "
            "please put a hold on it for me so I get it when it comes back."
        ),
        "checks": [
            ("Has Ana Ruiz (M001) got an open loan of Pride and Prejudice (B003) due 2025-02-05?", '''
def check_func(final_state):
    return any(l["member_id"] == "M001" and l["book_id"] == "B003" and not l["returned"]
               and l["due_date"] == "2025-02-05" for l in final_state["loans"].values())
'''),
            ("Has the number of available copies of B003 dropped by one?", '''
def check_func(final_state):
    before = initial_state["books"]["B003"]["available_copies"]
    return final_state["books"]["B003"]["available_copies"] == before - 1
'''),
            ("Has a hold on Sapiens (B004) been placed for M001?", '''
def check_func(final_state):
    return any(h["member_id"] == "M001" and h["book_id"] == "B004" for h in final_state["holds"].values())
'''),
        ],
        "solution": [
            ("find_member_by_name", {"name": "Ana Ruiz"}),
            ("search_books", {"query": "Pride and Prejudice"}),
            ("checkout_book", {"member_id": "M001", "book_id": "B003", "loan_days": 21}),
            ("search_books", {"query": "Sapiens"}),
            ("place_hold", {"member_id": "M001", "book_id": "B004"}),
        ],
    },
    {
        "task_id": "0115-102733",
        "task": (
            "Ben Okafor is at the desk returning The Left Hand of Darkness, which I believe is overdue. Take the "
            "book back, then let him settle everything he owes in one payment, and once his account is clear "
            "check out Pride and Prejudice to him with the standard loan length."
        ),
        "checks": [
            ("Has loan L001 been returned?", '''
def check_func(final_state):
    return final_state["loans"]["L001"]["returned"] is True
'''),
            ("Does Ben Okafor (M002) owe nothing?", '''
def check_func(final_state):
    return final_state["members"]["M002"]["fines_due"] == 0
'''),
            ("Has M002 got an open loan of B003 due 2025-01-29?", '''
def check_func(final_state):
    return any(l["member_id"] == "M002" and l["book_id"] == "B003" and not l["returned"]
               and l["due_date"] == "2025-01-29" for l in final_state["loans"].values())
'''),
            ("Is the returned copy of B001 back on the shelf?", '''
def check_func(final_state):
    return final_state["books"]["B001"]["available_copies"] == initial_state["books"]["B001"]["available_copies"] + 1
'''),
        ],
        "solution": [
            ("find_member_by_name", {"name": "Okafor"}),
            ("list_member_loans", {"member_id": "M002"}),
            ("return_book", {"loan_id": "L001"}),
            ("get_member", {"member_id": "M002"}),
            ("pay_fine", {"member_id": "M002", "amount": 2.75}),
            ("checkout_book", {"member_id": "M002", "book_id": "B003"}),
        ],
    },
    {
        "task_id": "0115-140512",
        "task": (
            "Ana Ruiz would like more time with Dune. Try to renew her loan; if the system will not allow "
            "another renewal, take Dune back instead and lend her a copy of The Left Hand of Darkness for "
            "one week (7 days) so she has something to read."
        ),
        "checks": [
            ("Has the Dune loan L002 been returned without a third renewal?", '''
def check_func(final_state):
    loan = final_state["loans"]["L002"]
    return loan["returned"] is True and loan["renewals"] == 2
'''),
            ("Has M001 got an open loan of B001 due 2025-01-22?", '''
def check_func(final_state):
    return any(l["member_id"] == "M001" and l["book_id"] == "B001" and not l["returned"]
               and l["due_date"] == "2025-01-22" for l in final_state["loans"].values())
'''),
        ],
        "solution": [
            ("list_member_loans", {"member_id": "M001"}),
            ("renew_loan", {"loan_id": "L002"}),
            ("return_book", {"loan_id": "L002"}),
            ("checkout_book", {"member_id": "M001", "book_id": "B001", "loan_days": 7}),
        ],
    },
]

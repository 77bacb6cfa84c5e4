from typing import Dict, List, Optional, TypedDict


class BookInfo(TypedDict):
    """A title in the catalogue and how many copies the branch holds."""

    book_id: str
    title: str
    author: str
    genre: str
    total_copies: int
    available_copies: int


class MemberInfo(TypedDict):
    """A registered library member."""

    member_id: str
    name: str
    status: str  # "active" or "suspended"
    fines_due: float
    max_loans: int


class LoanInfo(TypedDict):
    """One copy of a book lent to a member."""

    loan_id: str
    book_id: str
    member_id: str
    due_date: str  # ISO date
    renewals: int
    returned: bool


class HoldInfo(TypedDict):
    """A member waiting for a title with no copy on the shelf."""

    hold_id: str
    book_id: str
    member_id: str


class LibrarySystem:
    def __init__(self, init_config: Optional[dict] = None):
        self.books: Dict[str, BookInfo] = {}
        self.members: Dict[str, MemberInfo] = {}
        self.loans: Dict[str, LoanInfo] = {}
        self.holds: Dict[str, HoldInfo] = {}
        self.today: str = "2025-01-15"

    def _active_loans(self, member_id: str) -> List[LoanInfo]:
        return [loan for loan in self.loans.values() if loan["member_id"] == member_id and not loan["returned"]]

    def _add_days(self, iso_date: str, days: int) -> str:
        from datetime import date, timedelta

        return (date.fromisoformat(iso_date) + timedelta(days=days)).isoformat()

    def search_books(self, query: str, genre: Optional[str] = None) -> dict:
        """Search the catalogue by title or author, optionally within one genre.

        Args:
            query: Case-insensitive text matched against titles and authors.
            genre: Only return books of this genre.

        Returns:
            dict: {"success": True, "data": List[BookInfo]}
        """
        text = query.lower()
        found = [
            book for book in self.books.values()
            if (text in book["title"].lower() or text in book["author"].lower())
            and (genre is None or book["genre"].lower() == genre.lower())
        ]
        return {"success": True, "data": found}

    def get_book(self, book_id: str) -> dict:
        """Get a book's details and availability.

        Args:
            book_id: The book's ID.

        Returns:
            dict: {"success": True, "data": BookInfo} or {"success": False, "error": str}
        """
        if book_id not in self.books:
            return {"success": False, "error": f"Book {book_id} not found"}
        return {"success": True, "data": self.books[book_id]}

    def get_member(self, member_id: str) -> dict:
        """Get a member's account, including fines due.

        Args:
            member_id: The member's ID.

        Returns:
            dict: {"success": True, "data": MemberInfo} or {"success": False, "error": str}
        """
        if member_id not in self.members:
            return {"success": False, "error": f"Member {member_id} not found"}
        return {"success": True, "data": self.members[member_id]}

    def find_member_by_name(self, name: str) -> dict:
        """Find members whose name contains the given text.

        Args:
            name: Case-insensitive part of the member's name.

        Returns:
            dict: {"success": True, "data": List[MemberInfo]}
        """
        text = name.lower()
        return {"success": True, "data": [m for m in self.members.values() if text in m["name"].lower()]}

    def list_member_loans(self, member_id: str) -> dict:
        """List a member's loans that are not yet returned.

        Args:
            member_id: The member's ID.

        Returns:
            dict: {"success": True, "data": List[LoanInfo]} or {"success": False, "error": str}
        """
        if member_id not in self.members:
            return {"success": False, "error": f"Member {member_id} not found"}
        return {"success": True, "data": self._active_loans(member_id)}

    def checkout_book(self, member_id: str, book_id: str, loan_days: int = 14) -> dict:
        """Lend one copy of a book to a member.

        Args:
            member_id: The borrowing member.
            book_id: The book to lend.
            loan_days: Length of the loan in days (1 to 28).

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}

        Constraints:
            - The member must be active, owe no fines, and be under their loan limit.
            - A copy must be available.
        """
        member = self.members.get(member_id)
        book = self.books.get(book_id)
        if member is None:
            return {"success": False, "error": f"Member {member_id} not found"}
        if book is None:
            return {"success": False, "error": f"Book {book_id} not found"}
        if member["status"] != "active":
            return {"success": False, "error": f"Member {member_id} is {member['status']}"}
        if member["fines_due"] > 0:
            return {"success": False, "error": f"Member {member_id} owes {member['fines_due']:.2f} in fines"}
        if len(self._active_loans(member_id)) >= member["max_loans"]:
            return {"success": False, "error": f"Member {member_id} has reached the loan limit"}
        if not 1 <= loan_days <= 28:
            return {"success": False, "error": "loan_days must be between 1 and 28"}
        if book["available_copies"] < 1:
            return {"success": False, "error": f"No copy of {book_id} is available; place a hold instead"}
        loan_id = f"L{len(self.loans) + 1:03d}"
        self.loans[loan_id] = {
            "loan_id": loan_id, "book_id": book_id, "member_id": member_id,
            "due_date": self._add_days(self.today, loan_days), "renewals": 0, "returned": False,
        }
        book["available_copies"] -= 1
        return {"success": True, "message": f"Loan {loan_id} created; due {self.loans[loan_id]['due_date']}"}

    def return_book(self, loan_id: str) -> dict:
        """Return a lent copy. A late return adds a fine of 0.25 per day.

        Args:
            loan_id: The loan being returned.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        from datetime import date

        loan = self.loans.get(loan_id)
        if loan is None:
            return {"success": False, "error": f"Loan {loan_id} not found"}
        if loan["returned"]:
            return {"success": False, "error": f"Loan {loan_id} was already returned"}
        loan["returned"] = True
        self.books[loan["book_id"]]["available_copies"] += 1
        late_days = (date.fromisoformat(self.today) - date.fromisoformat(loan["due_date"])).days
        fine = round(max(late_days, 0) * 0.25, 2)
        self.members[loan["member_id"]]["fines_due"] = round(self.members[loan["member_id"]]["fines_due"] + fine, 2)
        return {"success": True, "message": f"Loan {loan_id} returned" + (f"; fine {fine:.2f}" if fine else "")}

    def renew_loan(self, loan_id: str) -> dict:
        """Extend a loan by 14 days. At most 2 renewals, and not when someone holds the title.

        Args:
            loan_id: The loan to renew.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        loan = self.loans.get(loan_id)
        if loan is None or loan["returned"]:
            return {"success": False, "error": f"No open loan {loan_id}"}
        if loan["renewals"] >= 2:
            return {"success": False, "error": f"Loan {loan_id} was already renewed twice"}
        if any(hold["book_id"] == loan["book_id"] for hold in self.holds.values()):
            return {"success": False, "error": "Another member holds this title; it cannot be renewed"}
        loan["renewals"] += 1
        loan["due_date"] = self._add_days(loan["due_date"], 14)
        return {"success": True, "message": f"Loan {loan_id} renewed; due {loan['due_date']}"}

    def place_hold(self, member_id: str, book_id: str) -> dict:
        """Place a hold on a title that has no copy available.

        Args:
            member_id: The member asking.
            book_id: The title wanted.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        if member_id not in self.members:
            return {"success": False, "error": f"Member {member_id} not found"}
        book = self.books.get(book_id)
        if book is None:
            return {"success": False, "error": f"Book {book_id} not found"}
        if book["available_copies"] > 0:
            return {"success": False, "error": f"{book_id} is on the shelf; check it out instead"}
        if any(h["member_id"] == member_id and h["book_id"] == book_id for h in self.holds.values()):
            return {"success": False, "error": "The member already holds this title"}
        hold_id = f"H{len(self.holds) + 1:03d}"
        self.holds[hold_id] = {"hold_id": hold_id, "book_id": book_id, "member_id": member_id}
        return {"success": True, "message": f"Hold {hold_id} placed"}

    def pay_fine(self, member_id: str, amount: float) -> dict:
        """Pay part or all of a member's fines.

        Args:
            member_id: The member paying.
            amount: Amount paid; positive and no more than what is due.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        member = self.members.get(member_id)
        if member is None:
            return {"success": False, "error": f"Member {member_id} not found"}
        if amount <= 0 or amount > member["fines_due"] + 1e-9:
            return {"success": False, "error": f"Amount must be between 0 and {member['fines_due']:.2f}"}
        member["fines_due"] = round(member["fines_due"] - amount, 2)
        return {"success": True, "message": f"Paid {amount:.2f}; {member['fines_due']:.2f} still due"}

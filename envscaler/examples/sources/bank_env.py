from typing import Dict, List, Optional, TypedDict


class AccountHolder(TypedDict):
    """A bank customer."""

    customer_id: str
    name: str
    kyc_verified: bool


class AccountInfo(TypedDict):
    """A checking or savings account."""

    account_id: str
    customer_id: str
    kind: str  # "checking" or "savings"
    balance: float
    currency: str
    frozen: bool
    daily_withdrawal_limit: float


class TransactionInfo(TypedDict):
    """One posted movement of money."""

    transaction_id: str
    account_id: str
    amount: float  # positive in, negative out
    kind: str  # "deposit", "withdrawal", "transfer_in", "transfer_out"
    memo: str
    date: str


class RetailBank:
    def __init__(self, init_config: Optional[dict] = None):
        self.customers: Dict[str, AccountHolder] = {}
        self.accounts: Dict[str, AccountInfo] = {}
        self.transactions: Dict[str, TransactionInfo] = {}
        self.business_date: str = "2025-05-02"

    def _post(self, account_id: str, amount: float, kind: str, memo: str) -> str:
        transaction_id = f"T{len(self.transactions) + 1:05d}"
        self.transactions[transaction_id] = {
            "transaction_id": transaction_id, "account_id": account_id, "amount": round(amount, 2),
            "kind": kind, "memo": memo, "date": self.business_date,
        }
        self.accounts[account_id]["balance"] = round(self.accounts[account_id]["balance"] + amount, 2)
        return transaction_id

    def _withdrawn_today(self, account_id: str) -> float:
        return -sum(t["amount"] for t in self.transactions.values()
                    if t["account_id"] == account_id and t["date"] == self.business_date
                    and t["kind"] in ("withdrawal", "transfer_out"))

    def find_customer(self, name: str) -> dict:
        """Find customers whose name contains the given text.

        Args:
            name: Case-insensitive part of the name.

        Returns:
            dict: {"success": True, "data": List[AccountHolder]}
        """
        return {"success": True, "data": [c for c in self.customers.values() if name.lower() in c["name"].lower()]}

    def list_accounts(self, customer_id: str) -> dict:
        """List a customer's accounts with balances.

        Args:
            customer_id: The customer's ID.

        Returns:
            dict: {"success": True, "data": List[AccountInfo]} or {"success": False, "error": str}
        """
        if customer_id not in self.customers:
            return {"success": False, "error": f"Customer {customer_id} not found"}
        return {"success": True, "data": [a for a in self.accounts.values() if a["customer_id"] == customer_id]}

    def get_account(self, account_id: str) -> dict:
        """Get one account.

        Args:
            account_id: The account's ID.

        Returns:
            dict: {"success": True, "data": AccountInfo} or {"success": False, "error": str}
        """
        if account_id not in self.accounts:
            return {"success": False, "error": f"Account {account_id} not found"}
        return {"success": True, "data": self.accounts[account_id]}

    def list_transactions(self, account_id: str, limit: int = 10) -> dict:
        """List an account's most recent transactions, newest first.

        Args:
            account_id: The account's ID.
            limit: How many at most (1 to 100).

        Returns:
            dict: {"success": True, "data": List[TransactionInfo]} or {"success": False, "error": str}
        """
        if account_id not in self.accounts:
            return {"success": False, "error": f"Account {account_id} not found"}
        found = [t for t in self.transactions.values() if t["account_id"] == account_id]
        return {"success": True, "data": list(reversed(found))[: max(1, min(limit, 100))]}

    def deposit(self, account_id: str, amount: float, memo: str = "") -> dict:
        """Deposit money into an account.

        Args:
            account_id: The account credited.
            amount: A positive amount.
            memo: Text shown on the statement.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        account = self.accounts.get(account_id)
        if account is None:
            return {"success": False, "error": f"Account {account_id} not found"}
        if account["frozen"]:
            return {"success": False, "error": f"Account {account_id} is frozen"}
        if amount <= 0:
            return {"success": False, "error": "Amount must be positive"}
        transaction_id = self._post(account_id, amount, "deposit", memo)
        return {"success": True, "message": f"Deposited {amount:.2f} ({transaction_id})"}

    def withdraw(self, account_id: str, amount: float, memo: str = "") -> dict:
        """Withdraw money, within the balance and the daily withdrawal limit.

        Args:
            account_id: The account debited.
            amount: A positive amount.
            memo: Text shown on the statement.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        account = self.accounts.get(account_id)
        if account is None:
            return {"success": False, "error": f"Account {account_id} not found"}
        if account["frozen"]:
            return {"success": False, "error": f"Account {account_id} is frozen"}
        if amount <= 0 or amount > account["balance"]:
            return {"success": False, "error": "Amount must be positive and within the balance"}
        if self._withdrawn_today(account_id) + amount > account["daily_withdrawal_limit"]:
            return {"success": False, "error": "Daily withdrawal limit exceeded"}
        transaction_id = self._post(account_id, -amount, "withdrawal", memo)
        return {"success": True, "message": f"Withdrew {amount:.2f} ({transaction_id})"}

    def transfer(self, from_account_id: str, to_account_id: str, amount: float, memo: str = "") -> dict:
        """Move money between two accounts of the same currency.

        Args:
            from_account_id: The account debited.
            to_account_id: The account credited.
            amount: A positive amount within the source balance and its daily limit.
            memo: Text shown on both statements.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}

        Constraints:
            - Neither account may be frozen; the owner of the source must be KYC-verified.
        """
        source, target = self.accounts.get(from_account_id), self.accounts.get(to_account_id)
        if source is None or target is None:
            return {"success": False, "error": "Both accounts must exist"}
        if from_account_id == to_account_id:
            return {"success": False, "error": "Source and target are the same account"}
        if source["frozen"] or target["frozen"]:
            return {"success": False, "error": "A frozen account cannot take part in a transfer"}
        if not self.customers[source["customer_id"]]["kyc_verified"]:
            return {"success": False, "error": "The source account's owner is not KYC-verified"}
        if source["currency"] != target["currency"]:
            return {"success": False, "error": "Accounts hold different currencies"}
        if amount <= 0 or amount > source["balance"]:
            return {"success": False, "error": "Amount must be positive and within the balance"}
        if self._withdrawn_today(from_account_id) + amount > source["daily_withdrawal_limit"]:
            return {"success": False, "error": "Daily withdrawal limit exceeded"}
        self._post(from_account_id, -amount, "transfer_out", memo)
        self._post(to_account_id, amount, "transfer_in", memo)
        return {"success": True, "message": f"Transferred {amount:.2f} from {from_account_id} to {to_account_id}"}

    def freeze_account(self, account_id: str, reason: str) -> dict:
        """Freeze an account, for example when a card is reported stolen.

        Args:
            account_id: The account.
            reason: Why it is frozen.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        account = self.accounts.get(account_id)
        if account is None:
            return {"success": False, "error": f"Account {account_id} not found"}
        if account["frozen"]:
            return {"success": False, "error": f"Account {account_id} is already frozen"}
        account["frozen"] = True
        return {"success": True, "message": f"Account {account_id} frozen: {reason}"}

    def unfreeze_account(self, account_id: str) -> dict:
        """Lift a freeze.

        Args:
            account_id: The account.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        account = self.accounts.get(account_id)
        if account is None or not account["frozen"]:
            return {"success": False, "error": f"Account {account_id} is not frozen"}
        account["frozen"] = False
        return {"success": True, "message": f"Account {account_id} unfrozen"}

    def set_withdrawal_limit(self, account_id: str, limit: float) -> dict:
        """Set an account's daily withdrawal limit (100 to 10000).

        Args:
            account_id: The account.
            limit: The new limit.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        account = self.accounts.get(account_id)
        if account is None:
            return {"success": False, "error": f"Account {account_id} not found"}
        if not 100 <= limit <= 10000:
            return {"success": False, "error": "The limit must be between 100 and 10000"}
        account["daily_withdrawal_limit"] = float(limit)
        return {"success": True, "message": f"Daily limit of {account_id} is now {limit:.2f}"}

    def summarize_customer(self, customer_id: str) -> dict:
        """Total balance per currency over a customer's accounts.

        Args:
            customer_id: The customer's ID.

        Returns:
            dict: {"success": True, "data": Dict[str, float]} or {"success": False, "error": str}
        """
        if customer_id not in self.customers:
            return {"success": False, "error": f"Customer {customer_id} not found"}
        totals: Dict[str, float] = {}
        accounts: List[AccountInfo] = [a for a in self.accounts.values() if a["customer_id"] == customer_id]
        for account in accounts:
            totals[account["currency"]] = round(totals.get(account["currency"], 0.0) + account["balance"], 2)
        return {"success": True, "data": totals}

from typing import Dict, List, Optional, TypedDict


class ProductInfo(TypedDict):
    """A product in the catalogue."""

    product_id: str
    name: str
    category: str
    price: float
    stock: int


class AddressInfo(TypedDict):
    street: str
    city: str
    postal_code: str
    country: str


class CustomerInfo(TypedDict):
    """A customer account."""

    customer_id: str
    name: str
    email: str
    address: AddressInfo


class OrderItem(TypedDict):
    """What a caller orders: the price is the catalogue's, never the caller's."""

    product_id: str
    quantity: int


class OrderLine(TypedDict):
    product_id: str
    quantity: int
    unit_price: float


class OrderInfo(TypedDict):
    """An order and where it ships."""

    order_id: str
    customer_id: str
    lines: List[OrderLine]
    status: str  # "pending", "shipped", "delivered", "cancelled" or "refunded"
    shipping_address: AddressInfo
    total: float
    refunded_amount: float


class OnlineShop:
    def __init__(self, init_config: Optional[dict] = None):
        self.products: Dict[str, ProductInfo] = {}
        self.customers: Dict[str, CustomerInfo] = {}
        self.orders: Dict[str, OrderInfo] = {}

    def search_products(self, query: str, max_price: Optional[float] = None) -> dict:
        """Search products by name or category.

        Args:
            query: Case-insensitive text matched against names and categories.
            max_price: Only products at or below this price.

        Returns:
            dict: {"success": True, "data": List[ProductInfo]}
        """
        text = query.lower()
        found = [p for p in self.products.values()
                 if (text in p["name"].lower() or text in p["category"].lower())
                 and (max_price is None or p["price"] <= max_price)]
        return {"success": True, "data": found}

    def get_product(self, product_id: str) -> dict:
        """Get a product's details, price and stock.

        Args:
            product_id: The product's ID.

        Returns:
            dict: {"success": True, "data": ProductInfo} or {"success": False, "error": str}
        """
        if product_id not in self.products:
            return {"success": False, "error": f"Product {product_id} not found"}
        return {"success": True, "data": self.products[product_id]}

    def find_customer_by_email(self, email: str) -> dict:
        """Look a customer up by e-mail address.

        Args:
            email: The customer's e-mail, matched case-insensitively.

        Returns:
            dict: {"success": True, "data": CustomerInfo} or {"success": False, "error": str}
        """
        for customer in self.customers.values():
            if customer["email"].lower() == email.lower():
                return {"success": True, "data": customer}
        return {"success": False, "error": f"No customer with e-mail {email}"}

    def list_customer_orders(self, customer_id: str) -> dict:
        """List a customer's orders.

        Args:
            customer_id: The customer's ID.

        Returns:
            dict: {"success": True, "data": List[OrderInfo]} or {"success": False, "error": str}
        """
        if customer_id not in self.customers:
            return {"success": False, "error": f"Customer {customer_id} not found"}
        return {"success": True, "data": [o for o in self.orders.values() if o["customer_id"] == customer_id]}

    def get_order(self, order_id: str) -> dict:
        """Get one order.

        Args:
            order_id: The order's ID.

        Returns:
            dict: {"success": True, "data": OrderInfo} or {"success": False, "error": str}
        """
        if order_id not in self.orders:
            return {"success": False, "error": f"Order {order_id} not found"}
        return {"success": True, "data": self.orders[order_id]}

    def create_order(self, customer_id: str, items: List[OrderItem]) -> dict:
        """Place an order shipping to the customer's address on file.

        Args:
            customer_id: The customer ordering.
            items: What to order: each a product_id and a quantity (the unit price is the catalogue's).

        Returns:
            dict: {"success": True, "message": str, "data": {"order_id": str, "total": float}}
                  or {"success": False, "error": str}

        Constraints:
            - Every quantity must be positive and in stock; stock is reserved when the order is placed.
        """
        customer = self.customers.get(customer_id)
        if customer is None:
            return {"success": False, "error": f"Customer {customer_id} not found"}
        if not items:
            return {"success": False, "error": "An order needs at least one line"}
        lines: List[OrderLine] = []
        for item in items:
            product = self.products.get(str(item.get("product_id")))
            quantity = item.get("quantity", 0)
            if product is None:
                return {"success": False, "error": f"Product {item.get('product_id')} not found"}
            if not isinstance(quantity, int) or quantity < 1:
                return {"success": False, "error": f"Quantity of {product['product_id']} must be a positive integer"}
            if product["stock"] < quantity:
                return {"success": False, "error": f"Only {product['stock']} of {product['product_id']} in stock"}
            lines.append({"product_id": product["product_id"], "quantity": quantity, "unit_price": product["price"]})
        for line in lines:
            self.products[line["product_id"]]["stock"] -= line["quantity"]
        order_id = f"O{len(self.orders) + 1001}"
        total = round(sum(line["quantity"] * line["unit_price"] for line in lines), 2)
        self.orders[order_id] = {
            "order_id": order_id, "customer_id": customer_id, "lines": lines, "status": "pending",
            "shipping_address": dict(customer["address"]), "total": total, "refunded_amount": 0.0,
        }
        return {"success": True, "message": f"Order {order_id} placed", "data": {"order_id": order_id, "total": total}}

    def cancel_order(self, order_id: str) -> dict:
        """Cancel a pending order and put its items back in stock.

        Args:
            order_id: The order to cancel.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        order = self.orders.get(order_id)
        if order is None:
            return {"success": False, "error": f"Order {order_id} not found"}
        if order["status"] != "pending":
            return {"success": False, "error": f"Order {order_id} is {order['status']}; only pending orders cancel"}
        for line in order["lines"]:
            self.products[line["product_id"]]["stock"] += line["quantity"]
        order["status"] = "cancelled"
        return {"success": True, "message": f"Order {order_id} cancelled"}

    def update_shipping_address(self, order_id: str, street: str, city: str, postal_code: str,
                                country: str = "US") -> dict:
        """Change where a pending order ships.

        Args:
            order_id: The order.
            street: Street and number.
            city: City.
            postal_code: Postal code.
            country: Two-letter country code.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        order = self.orders.get(order_id)
        if order is None:
            return {"success": False, "error": f"Order {order_id} not found"}
        if order["status"] != "pending":
            return {"success": False, "error": f"Order {order_id} has already {order['status']}"}
        order["shipping_address"] = {"street": street, "city": city, "postal_code": postal_code, "country": country}
        return {"success": True, "message": f"Order {order_id} now ships to {city}"}

    def issue_refund(self, order_id: str, amount: float, reason: str) -> dict:
        """Refund part or all of a delivered order.

        Args:
            order_id: A delivered order.
            amount: What to refund; the refunds of an order never exceed its total.
            reason: Why, for the record.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        order = self.orders.get(order_id)
        if order is None:
            return {"success": False, "error": f"Order {order_id} not found"}
        if order["status"] not in ("delivered", "refunded"):
            return {"success": False, "error": f"Order {order_id} is {order['status']}; refunds need delivery"}
        if amount <= 0 or order["refunded_amount"] + amount > order["total"] + 1e-9:
            return {"success": False, "error": "Refund exceeds what is left of the order total"}
        order["refunded_amount"] = round(order["refunded_amount"] + amount, 2)
        order["status"] = "refunded"
        return {"success": True, "message": f"Refunded {amount:.2f} on {order_id} ({reason})"}

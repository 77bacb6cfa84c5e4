META = {
    "env_id": "env_3",
    "env_class_name": "OnlineShop",
    "environment_summary": "Online store order management",
    "environment_introduction": (
        "This environment is the back office of an online store selling home and kitchen goods. It keeps the "
        "product catalogue with prices and stock, customer accounts and orders. Support agents use it to "
        "place and cancel orders, change shipping addresses and refund delivered orders."
    ),
    "constraints_rules": [
        "Stock is reserved when an order is placed and released when it is cancelled.",
        "Only pending orders can be cancelled or re-addressed.",
        "Only delivered orders can be refunded, and refunds never exceed the order total.",
    ],
}

ADDRESS_MAYA = {"street": "12 Elm Street", "city": "Portland", "postal_code": "97201", "country": "US"}
ADDRESS_JONAS = {"street": "88 Harbor Road", "city": "Seattle", "postal_code": "98101", "country": "US"}

BASE = {
    "products": {
        "P-KETTLE": {"product_id": "P-KETTLE", "name": "Electric kettle 1.7L", "category": "kitchen",
                     "price": 39.9, "stock": 12},
        "P-MUG": {"product_id": "P-MUG", "name": "Stoneware mug", "category": "kitchen", "price": 8.5, "stock": 40},
        "P-LAMP": {"product_id": "P-LAMP", "name": "Desk lamp", "category": "lighting", "price": 24.0, "stock": 3},
        "P-RUG": {"product_id": "P-RUG", "name": "Wool rug 120x180", "category": "home", "price": 149.0,
                  "stock": 0},
    },
    "customers": {
        "C-01": {"customer_id": "C-01", "name": "Maya Patel", "email": "maya.patel@example.com",
                 "address": ADDRESS_MAYA},
        "C-02": {"customer_id": "C-02", "name": "Jonas Berg", "email": "jonas.berg@example.com",
                 "address": ADDRESS_JONAS},
    },
    "orders": {
        "O1001": {"order_id": "O1001", "customer_id": "C-01",
                  "lines": [{"product_id": "P-LAMP", "quantity": 1, "unit_price": 24.0}],
                  "status": "pending", "shipping_address": ADDRESS_MAYA, "total": 24.0, "refunded_amount": 0.0},
        "O1002": {"order_id": "O1002", "customer_id": "C-02",
                  "lines": [{"product_id": "P-KETTLE", "quantity": 1, "unit_price": 39.9},
                            {"product_id": "P-MUG", "quantity": 4, "unit_price": 8.5}],
                  "status": "delivered", "shipping_address": ADDRESS_JONAS, "total": 73.9,
                  "refunded_amount": 0.0},
    },
}

SCENARIOS = [
    {
        "task_id": "0402-151230",
        "task": (
            "Hi, my e-mail is maya.patel@example.com. I'd like to order the electric kettle and two of the "
            "stoneware mugs. Also, I'm moving next week, so my desk lamp order that hasn't shipped yet should "
            "go to my new place: 5 Birch Lane, Portland, 97205, US."
        ),
        "checks": [
            ("Has Maya (C-01) a new pending order of 1 P-KETTLE and 2 P-MUG?", '''
def check_func(final_state):
    for o in final_state["orders"].values():
        if o["customer_id"] == "C-01" and o["order_id"] not in initial_state["orders"] and o["status"] == "pending":
            q = {l["product_id"]: l["quantity"] for l in o["lines"]}
            if q == {"P-KETTLE": 1, "P-MUG": 2}:
                return True
    return False
'''),
            ("Has the stock of the kettle and mugs been reserved?", '''
def check_func(final_state):
    p, p0 = final_state["products"], initial_state["products"]
    return p["P-KETTLE"]["stock"] == p0["P-KETTLE"]["stock"] - 1 and p["P-MUG"]["stock"] == p0["P-MUG"]["stock"] - 2
'''),
            ("Does order O1001 ship to 5 Birch Lane, Portland 97205?", '''
def check_func(final_state):
    a = final_state["orders"]["O1001"]["shipping_address"]
    return a["street"] == "5 Birch Lane" and a["city"] == "Portland" and a["postal_code"] == "97205"
'''),
        ],
        "solution": [
            ("find_customer_by_email", {"email": "maya.patel@example.com"}),
            ("search_products", {"query": "kettle"}),
            ("search_products", {"query": "mug"}),
            ("create_order", {"customer_id": "C-01", "items": [{"product_id": "P-KETTLE", "quantity": 1},
                                                               {"product_id": "P-MUG", "quantity": 2}]}),
            ("list_customer_orders", {"customer_id": "C-01"}),
            ("update_shipping_address", {"order_id": "O1001", "street": "5 Birch Lane", "city": "Portland",
                                         "postal_code": "97205", "country": "US"}),
        ],
    },
    {
        "task_id": "0402-163011",
        "task": (
            "This is Jonas Berg (jonas.berg@example.com). My last order arrived, but two of the four mugs were "
            "broken in transit. Please refund me for the two broken mugs only, at the price I paid, with the "
            "reason 'broken in transit'."
        ),
        "checks": [
            ("Has order O1002 been refunded exactly 17.00?", '''
def check_func(final_state):
    return abs(final_state["orders"]["O1002"]["refunded_amount"] - 17.0) < 1e-6
'''),
            ("Is O1002 marked refunded?", '''
def check_func(final_state):
    return final_state["orders"]["O1002"]["status"] == "refunded"
'''),
        ],
        "solution": [
            ("find_customer_by_email", {"email": "jonas.berg@example.com"}),
            ("list_customer_orders", {"customer_id": "C-02"}),
            ("issue_refund", {"order_id": "O1002", "amount": 17.0, "reason": "broken in transit"}),
        ],
    },
    {
        "task_id": "0402-174455",
        "task": (
            "Maya Patel (maya.patel@example.com) changed her mind about the desk lamp she ordered and wants it "
            "cancelled. Instead she wants two desk lamps in a single new order, if we have enough in stock "
            "once the cancelled one is back on the shelf."
        ),
        "checks": [
            ("Has order O1001 been cancelled?", '''
def check_func(final_state):
    return final_state["orders"]["O1001"]["status"] == "cancelled"
'''),
            ("Has Maya a new pending order of exactly 2 P-LAMP?", '''
def check_func(final_state):
    return any(o["customer_id"] == "C-01" and o["status"] == "pending" and o["order_id"] != "O1001"
               and [(l["product_id"], l["quantity"]) for l in o["lines"]] == [("P-LAMP", 2)]
               for o in final_state["orders"].values())
'''),
            ("Is lamp stock now 2 (3 + 1 released - 2 ordered)?", '''
def check_func(final_state):
    return final_state["products"]["P-LAMP"]["stock"] == 2
'''),
        ],
        "solution": [
            ("find_customer_by_email", {"email": "maya.patel@example.com"}),
            ("list_customer_orders", {"customer_id": "C-01"}),
            ("cancel_order", {"order_id": "O1001"}),
            ("get_product", {"product_id": "P-LAMP"}),
            ("create_order", {"customer_id": "C-01", "items": [{"product_id": "P-LAMP", "quantity": 2}]}),
        ],
    },
]

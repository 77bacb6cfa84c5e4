from typing import Dict, List, Optional, TypedDict


class SkuInfo(TypedDict):
    """A stock-keeping unit."""

    sku: str
    description: str
    unit_cost: float
    reorder_level: int


class WarehouseInfo(TypedDict):
    """A storage site."""

    warehouse_id: str
    city: str


class MovementInfo(TypedDict):
    """An audited change of stock."""

    movement_id: str
    sku: str
    warehouse_id: str
    quantity: int  # positive in, negative out
    reason: str


class PurchaseOrderInfo(TypedDict):
    """Stock ordered from a supplier."""

    po_id: str
    sku: str
    warehouse_id: str
    quantity: int
    status: str  # "open" or "received"


class WarehouseInventory:
    def __init__(self, init_config: Optional[dict] = None):
        self.skus: Dict[str, SkuInfo] = {}
        self.warehouses: Dict[str, WarehouseInfo] = {}
        self.stock: Dict[str, Dict[str, int]] = {}  # warehouse_id -> sku -> quantity
        self.movements: List[MovementInfo] = []
        self.purchase_orders: Dict[str, PurchaseOrderInfo] = {}

    def _move(self, sku: str, warehouse_id: str, quantity: int, reason: str) -> None:
        level = self.stock.setdefault(warehouse_id, {})
        level[sku] = level.get(sku, 0) + quantity
        self.movements.append({"movement_id": f"MV{len(self.movements) + 1:04d}", "sku": sku,
                               "warehouse_id": warehouse_id, "quantity": quantity, "reason": reason})

    def _known(self, sku: str, warehouse_id: str) -> Optional[str]:
        if sku not in self.skus:
            return f"Unknown SKU {sku}"
        if warehouse_id not in self.warehouses:
            return f"Unknown warehouse {warehouse_id}"
        return None

    def search_skus(self, text: str) -> dict:
        """Find SKUs whose code or description contains the text.

        Args:
            text: Case-insensitive search text.

        Returns:
            dict: {"success": True, "data": List[SkuInfo]}
        """
        t = text.lower()
        return {"success": True, "data": [s for s in self.skus.values()
                                          if t in s["sku"].lower() or t in s["description"].lower()]}

    def check_stock(self, sku: str) -> dict:
        """Quantity on hand of a SKU in every warehouse.

        Args:
            sku: The SKU.

        Returns:
            dict: {"success": True, "data": Dict[str, int]} or {"success": False, "error": str}
        """
        if sku not in self.skus:
            return {"success": False, "error": f"Unknown SKU {sku}"}
        return {"success": True, "data": {w: self.stock.get(w, {}).get(sku, 0) for w in self.warehouses}}

    def list_low_stock(self, warehouse_id: str) -> dict:
        """SKUs at or below their reorder level in one warehouse.

        Args:
            warehouse_id: The warehouse.

        Returns:
            dict: {"success": True, "data": List[dict]} or {"success": False, "error": str}
        """
        if warehouse_id not in self.warehouses:
            return {"success": False, "error": f"Unknown warehouse {warehouse_id}"}
        level = self.stock.get(warehouse_id, {})
        low = [{"sku": s, "on_hand": level.get(s, 0), "reorder_level": info["reorder_level"]}
               for s, info in self.skus.items() if level.get(s, 0) <= info["reorder_level"]]
        return {"success": True, "data": low}

    def transfer_stock(self, sku: str, from_warehouse: str, to_warehouse: str, quantity: int) -> dict:
        """Move stock between warehouses.

        Args:
            sku: The SKU.
            from_warehouse: Source warehouse.
            to_warehouse: Destination warehouse.
            quantity: A positive quantity, at most what the source holds.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        problem = self._known(sku, from_warehouse) or self._known(sku, to_warehouse)
        if problem:
            return {"success": False, "error": problem}
        if from_warehouse == to_warehouse:
            return {"success": False, "error": "Source and destination are the same"}
        if quantity < 1 or self.stock.get(from_warehouse, {}).get(sku, 0) < quantity:
            return {"success": False, "error": f"Not enough {sku} in {from_warehouse}"}
        self._move(sku, from_warehouse, -quantity, f"transfer to {to_warehouse}")
        self._move(sku, to_warehouse, quantity, f"transfer from {from_warehouse}")
        return {"success": True, "message": f"Moved {quantity} {sku} from {from_warehouse} to {to_warehouse}"}

    def adjust_stock(self, sku: str, warehouse_id: str, delta: int, reason: str) -> dict:
        """Correct stock after a count or damage, with a reason for the audit trail.

        Args:
            sku: The SKU.
            warehouse_id: The warehouse.
            delta: Change in quantity (negative for losses); stock never goes below 0.
            reason: Why, for example "damaged" or "cycle count".

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        problem = self._known(sku, warehouse_id)
        if problem:
            return {"success": False, "error": problem}
        if delta == 0 or not reason.strip():
            return {"success": False, "error": "An adjustment needs a non-zero delta and a reason"}
        if self.stock.get(warehouse_id, {}).get(sku, 0) + delta < 0:
            return {"success": False, "error": "Stock cannot go below zero"}
        self._move(sku, warehouse_id, delta, reason)
        return {"success": True, "message": f"Adjusted {sku} in {warehouse_id} by {delta}"}

    def create_purchase_order(self, sku: str, warehouse_id: str, quantity: int) -> dict:
        """Order stock from the supplier for delivery to a warehouse.

        Args:
            sku: The SKU.
            warehouse_id: Where it will be delivered.
            quantity: 1 to 10000 units.

        Returns:
            dict: {"success": True, "message": str, "data": {"po_id": str}} or {"success": False, "error": str}
        """
        problem = self._known(sku, warehouse_id)
        if problem:
            return {"success": False, "error": problem}
        if not 1 <= quantity <= 10000:
            return {"success": False, "error": "Quantity must be between 1 and 10000"}
        po_id = f"PO{len(self.purchase_orders) + 1:03d}"
        self.purchase_orders[po_id] = {"po_id": po_id, "sku": sku, "warehouse_id": warehouse_id,
                                       "quantity": quantity, "status": "open"}
        return {"success": True, "message": f"Purchase order {po_id} created", "data": {"po_id": po_id}}

    def receive_purchase_order(self, po_id: str) -> dict:
        """Book an open purchase order's goods into stock.

        Args:
            po_id: The purchase order.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        po = self.purchase_orders.get(po_id)
        if po is None or po["status"] != "open":
            return {"success": False, "error": f"No open purchase order {po_id}"}
        po["status"] = "received"
        self._move(po["sku"], po["warehouse_id"], po["quantity"], f"received {po_id}")
        return {"success": True, "message": f"Received {po['quantity']} {po['sku']} into {po['warehouse_id']}"}

    def set_reorder_level(self, sku: str, level: int) -> dict:
        """Set the quantity at or below which a SKU counts as low.

        Args:
            sku: The SKU.
            level: 0 or more.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        if sku not in self.skus:
            return {"success": False, "error": f"Unknown SKU {sku}"}
        if level < 0:
            return {"success": False, "error": "The reorder level cannot be negative"}
        self.skus[sku]["reorder_level"] = level
        return {"success": True, "message": f"Reorder level of {sku} is {level}"}

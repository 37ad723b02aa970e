"""The one error root and the catalogue of every error Liutong answers with.

Every error has a stable machine ``code`` (never renamed once released), an HTTP ``status``
and a message in zh-CN and English; ``data`` carries the structured facts the message is
formatted from. The HTTP layer and the CLI render these and nothing else: anything that is
not a ``LiutongError`` is a bug.

``sticky`` errors are remembered against the idempotency key of the request that raised
them, so that a retry with the same key fails the same way even when the world has changed
(a key that failed for insufficient balance keeps failing after a top-up).
"""

from __future__ import annotations

from typing import Any, ClassVar

_REGISTRY: dict[str, type[LiutongError]] = {}


class LiutongError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    zh: ClassVar[str] = "请求无法处理"
    en: ClassVar[str] = "The request cannot be processed"
    sticky: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code in _REGISTRY and _REGISTRY[cls.code] is not cls:
            raise TypeError(f"duplicate error code {cls.code!r}")
        _REGISTRY[cls.code] = cls

    def __init__(self, **data: Any) -> None:
        self.data = data
        super().__init__(self.message("en"))

    def message(self, lang: str = "zh") -> str:
        template = self.zh if lang.startswith("zh") else self.en
        try:
            return template.format(**self.data)
        except (KeyError, IndexError):
            return template

    def to_dict(self, lang: str = "zh") -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message(lang),
            "message_zh": self.message("zh"),
            "message_en": self.message("en"),
            "data": self.data,
        }

    @classmethod
    def rebuild(cls, code: str, data: dict[str, Any]) -> LiutongError:
        """Recreate a remembered error (sticky idempotency failures) from its code and data."""
        return _REGISTRY.get(code, LiutongError)(**data)


def catalogue() -> dict[str, type[LiutongError]]:
    return dict(_REGISTRY)


# --- request shape (422) --------------------------------------------------------------------


class InvalidRequest(LiutongError):
    code, status = "invalid_request", 422
    zh, en = "请求格式不正确：{detail}", "The request is malformed: {detail}"


class InvalidPhone(LiutongError):
    code, status = "invalid_phone", 422
    zh, en = "手机号格式不正确，请输入11位中国大陆手机号", "Not a valid mainland China mobile number (11 digits)"


class InvalidPlate(LiutongError):
    code, status = "invalid_plate", 422
    zh, en = "车牌号格式不正确", "Not a valid mainland China licence plate"


class InvalidIdCard(LiutongError):
    code, status = "invalid_id_card", 422
    zh, en = "身份证号码格式或校验位不正确", "Not a valid resident ID card number (format or check digit)"


class InvalidIdentity(LiutongError):
    code, status = "invalid_identity", 422
    zh, en = "{kind} 标识格式不正确", "The {kind} identity is malformed"


class InvalidAmount(LiutongError):
    code, status = "invalid_amount", 422
    zh, en = "数量必须是正整数", "The amount must be a positive integer"


class IdempotencyKeyRequired(LiutongError):
    code, status = "idempotency_key_required", 422
    zh, en = (
        "写操作必须提供 Idempotency-Key（1–128 个可见字符，不以 ~ 开头）",
        "Writes need an Idempotency-Key header of 1–128 printable characters, not starting with ~",
    )


# --- authentication and authorisation ------------------------------------------------------


class NotAuthenticated(LiutongError):
    code, status = "not_authenticated", 401
    zh, en = "缺少或无效的 API 密钥", "Missing or invalid API key"


class PermissionDenied(LiutongError):
    code, status = "permission_denied", 403
    zh, en = "当前角色无权执行此操作", "Your role may not do this"


# --- not found (always tenant-scoped: another tenant's id is simply not found) -------------


class NotFound(LiutongError):
    code, status = "not_found", 404
    zh, en = "{what} 不存在", "{what} not found"


class TenantNotFound(LiutongError):
    code, status = "tenant_not_found", 404
    zh, en = "租户不存在", "Tenant not found"


class MemberNotFound(LiutongError):
    code, status = "member_not_found", 404
    zh, en = "会员不存在", "Member not found"


# --- idempotency -----------------------------------------------------------------------------


class IdempotencyConflict(LiutongError):
    code, status = "idempotency_conflict", 409
    zh, en = (
        "该幂等键已用于另一个不同的请求",
        "This idempotency key was already used for a different request",
    )


# --- organisation ----------------------------------------------------------------------------


class DuplicateCode(LiutongError):
    code, status = "duplicate_code", 409
    zh, en = "编码 {value} 已存在", "The code {value} is already in use"


class InvalidReference(LiutongError):
    code, status = "invalid_reference", 400
    zh, en = "引用的{what}不存在或不属于本租户", "The referenced {what} does not exist in this tenant"


# --- members ---------------------------------------------------------------------------------


class DuplicateIdentity(LiutongError):
    code, status = "duplicate_identity", 409
    zh, en = "该{kind}已绑定其他会员", "This {kind} already belongs to another member"


class MemberNotActive(LiutongError):
    code, status = "member_not_active", 409
    zh, en = "会员状态为 {status}，不能执行此操作", "The member is {status} and cannot do this"


class InvalidStatusChange(LiutongError):
    code, status = "invalid_status_change", 409
    zh, en = "会员状态不能从 {from_status} 变为 {to_status}", "A member cannot go from {from_status} to {to_status}"


class CannotMerge(LiutongError):
    code, status = "cannot_merge", 409
    zh, en = "无法合并会员：{reason}", "These members cannot be merged: {reason}"


class LastPhoneIdentity(LiutongError):
    code, status = "last_phone_identity", 409
    zh, en = "会员必须保留一个手机号", "A member must keep one mobile number"


class MemberCodeExpired(LiutongError):
    code, status = "member_code_expired", 400
    zh, en = "会员码已过期，请刷新后重新出示", "The member code has expired; ask the member to refresh it"


class MemberCodeInvalid(LiutongError):
    code, status = "member_code_invalid", 400
    zh, en = "会员码无效", "The member code is not valid"


# --- ledger ----------------------------------------------------------------------------------


class UnbalancedEntry(LiutongError):
    code, status = "unbalanced_entry", 400
    zh, en = "分录借贷不平：资产 {asset} 合计 {total}", "The entry does not balance: {asset} sums to {total}"


class InsufficientBalance(LiutongError):
    code, status = "insufficient_balance", 409
    zh, en = "余额不足：可用 {available}，需要 {requested}", "Insufficient balance: {available} available, {requested} requested"
    sticky = True


class EntryAlreadyReversed(LiutongError):
    code, status = "entry_already_reversed", 409
    zh, en = "该分录已冲正", "This entry has already been reversed"


class NotReversible(LiutongError):
    code, status = "not_reversible", 409
    zh, en = "该分录不能冲正：{reason}", "This entry cannot be reversed: {reason}"


class LotBackedAccount(LiutongError):
    code, status = "lot_backed_account", 400
    zh, en = "积分账户只能通过积分发放、使用、过期和冲正变动", "Points accounts move only through earn, spend, expiry and reversal"


# --- checkout --------------------------------------------------------------------------------


class PaymentMismatch(LiutongError):
    code, status = "payment_mismatch", 409
    zh, en = "实付 {paid} 分与应付 {payable} 分不符", "The payment of {paid} fen does not match the {payable} fen due"


class PointsBeyondBillCap(LiutongError):
    code, status = "points_beyond_bill_cap", 409
    zh, en = "本单最多可用 {max_usable} 积分", "At most {max_usable} points can pay for this bill"


class PointsBelowMinimum(LiutongError):
    code, status = "points_below_minimum", 409
    zh, en = "积分抵现至少使用 {min_points} 积分", "Paying with points needs at least {min_points} points"


class PointsNotAccepted(LiutongError):
    code, status = "points_not_accepted", 409
    zh, en = "该商户不接受积分抵现", "This merchant does not accept points"


class RefundExceedsOrder(LiutongError):
    code, status = "refund_exceeds_order", 409
    zh, en = "第 {line_no} 行最多还可退 {left} 件", "Line {line_no} has only {left} left to refund"


class UnknownVenue(LiutongError):
    code, status = "unknown_venue", 422
    zh, en = "业态场所 {venue} 不存在", "There is no venue {venue}"


class CampaignBudgetSpent(LiutongError):
    code, status = "campaign_budget_spent", 409
    zh, en = "活动 {campaign} 的积分预算已用完", "The points budget of campaign {campaign} is spent"


# --- behaviour and venue events --------------------------------------------------------------


class BehaviourNotRewarded(LiutongError):
    code, status = "behaviour_not_rewarded", 409
    zh, en = "当前方案没有奖励该行为（{event}）的规则", "The program has no rule rewarding {event}"


class BehaviourLimitReached(LiutongError):
    code, status = "behaviour_limit_reached", 409
    zh, en = "{name}已达次数上限", "{name}: the limit for this period is reached"


class AlreadyReferred(LiutongError):
    code, status = "already_referred", 409
    zh, en = "该会员已有推荐人", "This member was already referred by someone"


class WrongTerminalKind(LiutongError):
    code, status = "wrong_terminal_kind", 409
    zh, en = "该终端不能处理此事件（需要{expected}）", "This terminal cannot report this event (needs a {expected})"


class StayNotOpen(LiutongError):
    code, status = "stay_not_open", 409
    zh, en = "入住单 {stay_no} 未在住", "Stay {stay_no} is not checked in"


class NotBirthday(LiutongError):
    code, status = "not_birthday", 409
    zh, en = "今天不是该会员的生日", "Today is not this member's birthday"


class BenefitNotHeld(LiutongError):
    code, status = "benefit_not_held", 409
    zh, en = "会员未持有权益 {benefit}，或该权益不适用于此处", "The member does not hold {benefit} here"


class BenefitQuotaUsed(LiutongError):
    code, status = "benefit_quota_used", 409
    zh, en = "权益 {benefit} 本期额度已用完", "The quota of {benefit} for this period is used up"


# --- stored value ----------------------------------------------------------------------------


class StoredValueAccount(LiutongError):
    code, status = "stored_value_account", 400
    zh, en = ("储值账户只能通过充值、支付、退款、提现和赠送金过期变动",
              "Stored-value accounts move only through recharges, payments, refunds, cash-outs and bonus expiry")


class StoredValueNotAccepted(LiutongError):
    code, status = "stored_value_not_accepted", 409
    zh, en = "商户 {merchant} 不接受储值支付", "The merchant {merchant} does not accept stored value"


class RechargeOutOfRange(LiutongError):
    code, status = "recharge_out_of_range", 409
    zh, en = ("单次充值须在 {min_recharge} 至 {max_recharge} 分之间",
              "A recharge must be between {min_recharge} and {max_recharge} fen")


class StoredValueCapExceeded(LiutongError):
    code, status = "stored_value_cap_exceeded", 409
    zh, en = ("储值本金上限 {max_principal} 分，当前 {held} 分，本次最多可充 {room} 分",
              "Principal is capped at {max_principal} fen; {held} fen held, at most {room} fen more")
    sticky = True


class PaymentAlreadyRecharged(LiutongError):
    code, status = "payment_already_recharged", 409
    zh, en = ("支付流水 {channel}/{reference} 已充值过", "The payment {channel}/{reference} has already been recharged")


class NothingToCashOut(LiutongError):
    code, status = "nothing_to_cash_out", 409
    zh, en = "没有可退的储值本金", "There is no stored-value principal to cash out"


class CashOutNotAllowed(LiutongError):
    code, status = "cash_out_not_allowed", 409
    zh, en = "当前储值条款不支持余额退款", "The stored-value terms do not allow cashing out the balance"


class RefundExceedsPayment(LiutongError):
    code, status = "refund_exceeds_payment", 409
    zh, en = "该储值支付最多还可退 {left} 分", "Only {left} fen of this stored-value payment is left to refund"


class StoredValueBeyondBill(LiutongError):
    code, status = "stored_value_beyond_bill", 409
    zh, en = "储值支付 {requested} 分超过本单应付 {payable} 分", "Stored value of {requested} fen exceeds the {payable} fen due"


# --- tiers -----------------------------------------------------------------------------------


class UnknownTier(LiutongError):
    code, status = "unknown_tier", 400
    zh, en = "当前会员方案中没有等级 {tier}", "The current program has no tier {tier}"


class TierLocked(LiutongError):
    code, status = "tier_locked", 409
    zh, en = "会员等级已被人工锁定，不能变更", "The member's tier is locked by an override and cannot change"


class TierNotForSale(LiutongError):
    code, status = "tier_not_for_sale", 409
    zh, en = "等级 {tier} 不支持付费升级", "Tier {tier} cannot be bought"


class PaymentAlreadyUsed(LiutongError):
    code, status = "payment_already_used", 409
    zh, en = "支付流水 {channel} {reference} 已用于另一笔付费升级", "Payment {channel} {reference} already paid for another upgrade"


class InvalidOverride(LiutongError):
    code, status = "invalid_override", 400
    zh, en = "人工调整无效：{reason}", "The override is not valid: {reason}"
